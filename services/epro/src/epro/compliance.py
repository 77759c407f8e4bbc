"""Compliance per participant and site: how many closed occurrences were answered on time."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
from trialstream.identity import DEFAULT_STUDY

_PER_PARTICIPANT = """
SELECT p.participant_id, p.site_id,
       count(o.*) FILTER (WHERE o.status = 'completed')                           AS on_time,
       count(o.*) FILTER (WHERE o.status = 'missed' AND o.response_id IS NOT NULL) AS late,
       count(o.*) FILTER (WHERE o.status = 'missed' AND o.response_id IS NULL)     AS missed,
       count(o.*) FILTER (WHERE o.status = 'open')                                AS open
FROM participants p
LEFT JOIN occurrences o
       ON o.participant_id = p.participant_id AND ($3::text IS NULL OR o.questionnaire_id = $3)
WHERE ($1::text IS NULL OR p.site_id = $1) AND ($2::text IS NULL OR p.participant_id = $2)
  AND p.study_id = $4
GROUP BY p.participant_id, p.site_id
ORDER BY p.site_id, p.participant_id
"""
_WHERE_IS = "SELECT study_id, site_id FROM participants WHERE participant_id = $1"


@dataclass(frozen=True)
class Compliance:
    """Closed occurrences only: an open window is neither kept nor missed yet.
    `late` = answered after the window closed (counted as not on time)."""

    on_time: int
    late: int
    missed: int
    open: int

    @property
    def closed(self) -> int:
        return self.on_time + self.late + self.missed

    @property
    def on_time_percent(self) -> float | None:
        return None if self.closed == 0 else round(100.0 * self.on_time / self.closed, 1)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "closed": self.closed, "on_time_percent": self.on_time_percent}


def total(parts: list[Compliance]) -> Compliance:
    return Compliance(
        sum(p.on_time for p in parts),
        sum(p.late for p in parts),
        sum(p.missed for p in parts),
        sum(p.open for p in parts),
    )


async def report(
    pool: asyncpg.Pool,
    site: str | None,
    participant_id: str | None,
    questionnaire_id: str | None,
    study: str = DEFAULT_STUDY,
) -> dict[str, Any]:
    rows = await pool.fetch(_PER_PARTICIPANT, site, participant_id, questionnaire_id, study)
    people = [
        (
            r["participant_id"],
            r["site_id"],
            Compliance(r["on_time"], r["late"], r["missed"], r["open"]),
        )
        for r in rows
    ]
    sites: dict[str, list[Compliance]] = {}
    for _, site_id, c in people:
        sites.setdefault(site_id, []).append(c)
    return {
        "questionnaire_id": questionnaire_id,
        "sites": [{"site_id": s, **total(cs).as_dict()} for s, cs in sorted(sites.items())],
        "participants": [{"participant_id": p, "site_id": s, **c.as_dict()} for p, s, c in people],
    }


async def where_is(pool: asyncpg.Pool, participant_id: str) -> tuple[str, str] | None:
    """(study, site) of a participant ePRO knows; None before their enrolment arrives."""
    row = await pool.fetchrow(_WHERE_IS, participant_id)
    return None if row is None else (row["study_id"], row["site_id"])

"""Use cases of the portfolio's early-warning lights (decision 0090): keep the latest KRI
snapshot and retention summary per (study, site) from their compacted topics, and light
the portfolio's sites from them. Aggregates only, like the events."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from trialstream.events.monitoring import SiteKriSnapshot
from trialstream.events.retention_risk import RetentionRiskSummary

from intelligence import repository
from intelligence.domain.lights import LIGHTS, Limits, site_lights, study_lights

_Site = TypeVar("_Site", SiteKriSnapshot, RetentionRiskSummary)


def _newest_per_site(
    events: Sequence[_Site], at: Callable[[_Site], datetime]
) -> list[tuple[str, str, datetime, str]]:
    """(study, site, time, payload JSON) of the newest event per site: a batch may hold
    several of one site."""
    latest: dict[tuple[str, str], _Site] = {}
    for e in events:
        old = latest.get((e.study_id, e.site_id))
        if old is None or at(e) >= at(old):
            latest[(e.study_id, e.site_id)] = e
    return [(s, t, at(e), e.model_dump_json()) for (s, t), e in latest.items()]


async def record_snapshots(pool: asyncpg.Pool, events: Sequence[SiteKriSnapshot]) -> int:
    rows = _newest_per_site(events, lambda e: e.evaluated_at)
    await repository.store_latest(pool, "kri", rows)
    return len(rows)


async def record_risk(pool: asyncpg.Pool, events: Sequence[RetentionRiskSummary]) -> int:
    rows = _newest_per_site(events, lambda e: e.scored_at)
    await repository.store_latest(pool, "risk", rows)
    return len(rows)


async def light(
    pool: asyncpg.Pool, results: Sequence[dict[str, Any]], now: datetime, limits: Limits
) -> None:
    """Add `early_warning` to every site of these forecasts (open or not), and to each
    study the worst of its sites' lights."""
    kris, risks = await repository.latest(pool, [r["study_id"] for r in results])
    for result in results:
        study = result["study_id"]
        for site in [*result["sites"], *result["sites_not_open"]]:
            key = (study, site["site_id"])
            snap, risk = kris.get(key), risks.get(key)
            site["early_warning"] = site_lights(
                None if snap is None else json.loads(snap[1]),
                None if risk is None else json.loads(risk[1]),
                (None if snap is None else snap[0], None if risk is None else risk[0]),
                now,
                limits,
            )
        restudy(result)


def restudy(result: dict[str, Any]) -> None:
    """The study's lights: the worst of the sites it lists (after a scope narrowed them)."""
    result["early_warning"] = study_lights([*result["sites"], *result["sites_not_open"]])


CSV_COLUMNS = (
    "data_completeness", "wear_time_pct", "alert_load", "alerts_per_participant_day",
    "open_alerts", "open_flags", "time_to_acknowledge", "ack_median_min", "retention_risk",
    "high_risk_pct", "participants_scored", "kris_as_of", "kris_stale", "retention_as_of",
    "retention_stale",
)  # fmt: skip


def csv_cells(part: dict[str, Any]) -> list[Any]:
    """A study's row: its lights only; a site's: lights, values and when they were made."""
    found = part.get("early_warning") or {}
    if all(isinstance(found.get(n), str) for n in LIGHTS):  # a study's: statuses only
        dc, al, ta, rr = (found[n] for n in LIGHTS)
        return [dc, "", al, "", "", "", ta, "", rr, "", "", "", "", "", ""]
    if not found:
        return [""] * len(CSV_COLUMNS)

    def v(x: Any) -> Any:
        return "" if x is None else x

    dc, al, ta, rr = (found[n] for n in LIGHTS)
    return [
        dc["status"], v(dc["value"]), al["status"], v(al["value"]), v(al.get("open_alerts")),
        v(al.get("open_flags")), ta["status"], v(ta["value"]), rr["status"], v(rr["value"]),
        v(rr.get("participants_scored")), v(dc["as_of"]), dc["stale"], v(rr["as_of"]),
        rr["stale"],
    ]  # fmt: skip

"""SQL: candidates (minimised), the criteria decisions were made under, decisions and
their conversion status, enrolments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
from trialstream.db import DbConnection

from intelligence.domain.fhir import Candidate
from intelligence.domain.matching import Columns

_ELSEWHERE = """
SELECT candidate_id FROM candidates
WHERE candidate_id = ANY($1::text[]) AND site_id <> $2 FOR UPDATE
"""
# one statement per upload (arrays, not a statement per row); ids are unique in an upload
_UPSERT_CANDIDATES = """
INSERT INTO candidates (candidate_id, site_id, record, uploaded_by, received_at)
SELECT c, $2, r::jsonb, $4, now() FROM unnest($1::text[], $3::text[]) AS u (c, r)
ON CONFLICT (candidate_id) DO UPDATE
SET record = EXCLUDED.record, uploaded_by = EXCLUDED.uploaded_by, received_at = now()
"""
_CRITERIA = """
INSERT INTO criteria (study_id, digest, version, criteria) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (study_id, digest) DO NOTHING
"""
# a new decision replaces the old; the candidate's way to enrolment (status) is kept
_UPSERT_DECISIONS = """
INSERT INTO decisions (candidate_id, study_id, site_id, criteria_digest, criteria_version,
                       decision, outcomes, risk, risk_model)
SELECT c, s, $3, d, v, k, o, r, CASE WHEN r IS NULL THEN NULL ELSE $9 END
FROM unnest($1::text[], $2::text[], $4::text[], $5::int[], $6::text[], $7::bytea[],
            $8::float8[]) AS u (c, s, d, v, k, o, r)
ON CONFLICT (candidate_id, study_id) DO UPDATE
SET site_id = EXCLUDED.site_id, criteria_digest = EXCLUDED.criteria_digest,
    criteria_version = EXCLUDED.criteria_version, decision = EXCLUDED.decision,
    outcomes = EXCLUDED.outcomes, risk = EXCLUDED.risk, risk_model = EXCLUDED.risk_model,
    evaluated_at = now()
"""
_SITE_FAILURES = """
SELECT study_id,
       count(*) FILTER (WHERE status = 'screen_failed') AS failed,
       count(*) FILTER (WHERE status IN ('screened', 'enrolled', 'screen_failed')) AS screened
FROM decisions WHERE site_id = $1 GROUP BY study_id
"""
_RANKED = """
SELECT d.candidate_id, d.decision, d.risk, d.risk_model, d.criteria_version,
       d.criteria_digest, d.outcomes, d.status, d.status_reason, d.status_at, d.evaluated_at,
       k.record::text AS record
FROM decisions d JOIN candidates k USING (candidate_id)
WHERE d.study_id = $1 AND d.site_id = $2 AND d.decision = ANY($3::text[])
ORDER BY CASE d.decision WHEN 'eligible' THEN 0 WHEN 'needs_review' THEN 1 ELSE 2 END,
         d.risk ASC NULLS LAST, d.candidate_id
LIMIT $4
"""
_BY_SITE = """
SELECT site_id, decision, status, count(*) AS n FROM decisions
WHERE study_id = $1 AND ($2::text[] IS NULL OR site_id = ANY($2::text[]))
GROUP BY site_id, decision, status
"""
_FAILED_CRITERIA = """
SELECT k.criteria->'criteria'->(g.i)->>'id' AS criterion,
       CASE get_byte(d.outcomes, g.i) WHEN 1 THEN 'fail' ELSE 'unknown' END AS outcome,
       count(*) AS n
FROM decisions d
JOIN criteria k ON (k.study_id, k.digest) = (d.study_id, d.criteria_digest)
CROSS JOIN LATERAL generate_series(0, length(d.outcomes) - 1) AS g (i)
WHERE d.study_id = $1 AND ($2::text[] IS NULL OR d.site_id = ANY($2::text[]))
  AND d.decision <> 'eligible' AND get_byte(d.outcomes, g.i) IN (1, 2)
GROUP BY 1, 2 ORDER BY n DESC, criterion, outcome
"""
_FAILURE_REASONS = """
SELECT status_reason AS reason, count(*) AS n FROM decisions
WHERE study_id = $1 AND ($2::text[] IS NULL OR site_id = ANY($2::text[]))
  AND status = 'screen_failed'
GROUP BY 1 ORDER BY n DESC, reason
"""
_DECISION = """
SELECT candidate_id, study_id, site_id, decision, status, status_reason, status_at
FROM decisions WHERE candidate_id = $1 AND study_id = $2 FOR UPDATE
"""
_SET_STATUS = """
UPDATE decisions SET status = $3, status_reason = $4, status_at = now()
WHERE candidate_id = $1 AND study_id = $2
"""
_ENROL = """
INSERT INTO enrolments (participant_id, study_id, site_id, enrolled_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
ON CONFLICT (participant_id) DO NOTHING
"""
# a referred candidate enrolled under their pseudonym in that study has converted
_CONVERTED = """
UPDATE decisions d SET status = 'enrolled', status_reason = NULL, status_at = e.at
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS e (participant_id, study_id, at)
WHERE d.candidate_id = e.participant_id AND d.study_id = e.study_id AND d.status <> 'enrolled'
RETURNING d.candidate_id
"""
_ENROLLED = """
SELECT site_id, count(*) AS n, min(enrolled_at) AS first_at FROM enrolments
WHERE study_id = $1 GROUP BY site_id
"""
_CRITERIA_OF = """
SELECT digest, criteria::text FROM criteria WHERE study_id = $1 AND digest = ANY($2::text[])
"""
_CANDIDATE = "SELECT candidate_id, site_id, record::text FROM candidates WHERE candidate_id = $1"
_DECISIONS_OF = """
SELECT d.study_id, d.site_id, d.decision, d.outcomes, d.criteria_version,
       d.criteria_digest, c.criteria::text, d.risk, d.risk_model
FROM decisions d JOIN criteria c ON (c.study_id, c.digest) = (d.study_id, d.criteria_digest)
WHERE d.candidate_id = $1 ORDER BY d.study_id
"""


async def elsewhere(conn: DbConnection, candidate_ids: Sequence[str], site_id: str) -> list[str]:
    """Candidates already on record at another site (locked until the transaction ends)."""
    return [r["candidate_id"] for r in await conn.fetch(_ELSEWHERE, list(candidate_ids), site_id)]


async def store(
    conn: DbConnection,
    site_id: str,
    candidates: Sequence[Candidate],
    criteria: Sequence[tuple[str, str, int, str]],
    decisions: Columns,
    uploaded_by: str,
    risk_model: str,
) -> None:
    await conn.execute(
        _UPSERT_CANDIDATES,
        [c.candidate_id for c in candidates],
        site_id,
        [c.model_dump_json() for c in candidates],
        uploaded_by,
    )
    await conn.executemany(_CRITERIA, criteria)
    await conn.execute(
        _UPSERT_DECISIONS,
        decisions.candidate_id,
        decisions.study_id,
        site_id,
        decisions.criteria_digest,
        decisions.criteria_version,
        decisions.decision,
        decisions.outcomes,
        decisions.risk,
        risk_model,
    )


async def site_failure_rates(conn: DbConnection, site_id: str) -> dict[str, tuple[int, int]]:
    """Per study: (screen failures, screenings) at the site so far."""
    rows = await conn.fetch(_SITE_FAILURES, site_id)
    return {r["study_id"]: (r["failed"], r["screened"]) for r in rows}


async def ranked(
    pool: asyncpg.Pool, study_id: str, site_id: str, decisions: Sequence[str], limit: int
) -> list[asyncpg.Record]:
    """The page's decisions with their outcome codes and the candidates' records."""
    return list(await pool.fetch(_RANKED, study_id, site_id, list(decisions), limit))


async def criteria_of(pool: asyncpg.Pool, study_id: str, digests: Sequence[str]) -> dict[str, str]:
    rows = await pool.fetch(_CRITERIA_OF, study_id, list(digests))
    return {r["digest"]: r["criteria"] for r in rows}


async def aggregates(
    pool: asyncpg.Pool, study_id: str, sites: Sequence[str] | None
) -> dict[str, list[asyncpg.Record]]:
    scope = None if sites is None else list(sites)
    async with pool.acquire() as conn:
        return {
            "by_site": await conn.fetch(_BY_SITE, study_id, scope),
            "criteria": await conn.fetch(_FAILED_CRITERIA, study_id, scope),
            "reasons": await conn.fetch(_FAILURE_REASONS, study_id, scope),
        }


async def decision_for_update(
    conn: DbConnection, candidate_id: str, study_id: str
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(_DECISION, candidate_id, study_id)
    return row


async def set_status(
    conn: DbConnection, candidate_id: str, study_id: str, status: str, reason: str | None
) -> None:
    await conn.execute(_SET_STATUS, candidate_id, study_id, status, reason)


async def record_enrolments(
    pool: asyncpg.Pool, rows: Sequence[tuple[str, str, str, datetime]]
) -> list[str]:
    """Enrolments (first one per participant wins) and the candidates they convert."""
    ids, studies, sites, times = (list(c) for c in zip(*rows, strict=True))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_ENROL, ids, studies, sites, times)
        converted = await conn.fetch(_CONVERTED, ids, studies, times)
    return [r["candidate_id"] for r in converted]


async def enrolled_by_site(pool: asyncpg.Pool, study_id: str) -> dict[str, tuple[int, datetime]]:
    rows = await pool.fetch(_ENROLLED, study_id)
    return {r["site_id"]: (r["n"], r["first_at"]) for r in rows}


async def candidate(pool: asyncpg.Pool, candidate_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(_CANDIDATE, candidate_id)
    return row


async def decisions_of(pool: asyncpg.Pool, candidate_id: str) -> list[asyncpg.Record]:
    return list(await pool.fetch(_DECISIONS_OF, candidate_id))


# the latest per (study, site) wins: a snapshot re-read after a newer one changes nothing
_KRI_SNAPSHOTS = """
INSERT INTO site_kri_snapshots AS s (study_id, site_id, evaluated_at, snapshot)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[])
ON CONFLICT (study_id, site_id) DO UPDATE
SET evaluated_at = EXCLUDED.evaluated_at, snapshot = EXCLUDED.snapshot, received_at = now()
WHERE EXCLUDED.evaluated_at >= s.evaluated_at
"""
_RETENTION_RISK = """
INSERT INTO site_retention_risk AS s (study_id, site_id, scored_at, summary)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[])
ON CONFLICT (study_id, site_id) DO UPDATE
SET scored_at = EXCLUDED.scored_at, summary = EXCLUDED.summary, received_at = now()
WHERE EXCLUDED.scored_at >= s.scored_at
"""
_SNAPSHOTS_OF = """
SELECT study_id, site_id, evaluated_at AS at, snapshot::text AS payload
FROM site_kri_snapshots WHERE study_id = ANY($1::text[])
"""
_RISK_OF = """
SELECT study_id, site_id, scored_at AS at, summary::text AS payload
FROM site_retention_risk WHERE study_id = ANY($1::text[])
"""
Latest = dict[tuple[str, str], tuple[datetime, str]]


async def store_latest(
    pool: asyncpg.Pool,
    source: Literal["kri", "risk"],
    rows: Sequence[tuple[str, str, datetime, str]],
) -> None:
    """(study, site, time, payload JSON) rows of one source, one per key."""
    if rows:
        studies, sites, times, payloads = (list(c) for c in zip(*rows, strict=True))
        sql = {"kri": _KRI_SNAPSHOTS, "risk": _RETENTION_RISK}[source]
        await pool.execute(sql, studies, sites, times, payloads)


async def latest(pool: asyncpg.Pool, study_ids: Sequence[str]) -> tuple[Latest, Latest]:
    """The stored KRI snapshots and retention summaries of these studies, by (study, site)."""
    async with pool.acquire() as conn:
        kris = await conn.fetch(_SNAPSHOTS_OF, list(study_ids))
        risks = await conn.fetch(_RISK_OF, list(study_ids))
    return (
        {(r["study_id"], r["site_id"]): (r["at"], r["payload"]) for r in kris},
        {(r["study_id"], r["site_id"]): (r["at"], r["payload"]) for r in risks},
    )

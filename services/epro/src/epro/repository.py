"""ePRO's SQL: questionnaires, participants, credentials, schedules and occurrences, responses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from trialstream.db import DbConnection
from trialstream.events.participants import ParticipantState
from trialstream.identity import DEFAULT_STUDY

from epro.domain import withdrawal
from epro.domain.definitions import Questionnaire
from epro.domain.responses import ResponseVersion
from epro.domain.schedules import Occurrence, Schedule

Db = DbConnection | asyncpg.Pool

_INSERT_QUESTIONNAIRE = """
INSERT INTO questionnaires (questionnaire_id, version, digest, definition) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (questionnaire_id, version) DO NOTHING RETURNING version
"""
_DIGEST_OF = "SELECT digest FROM questionnaires WHERE questionnaire_id = $1 AND version = $2"
_ALL_QUESTIONNAIRES = "SELECT definition FROM questionnaires ORDER BY questionnaire_id, version"

# The schedule clock starts when ePRO hears of the participant, at most a day back:
# replaying an old enrolment must not emit months of due and missed events.
# Locked first, so the participant's state and the withdrawal's effects change together
# (the scheduler and submissions read this row under a share lock).
_LOCK_PARTICIPANTS = """
SELECT participant_id, withdrawn_at FROM participants WHERE participant_id = ANY($1::text[])
ORDER BY participant_id FOR UPDATE
"""
_UPSERT_PARTICIPANTS = """
INSERT INTO participants (participant_id, site_id, timezone, enrolled_at, withdrawn_at, study_id)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[]
)
ON CONFLICT (participant_id) DO UPDATE
SET site_id = EXCLUDED.site_id, timezone = EXCLUDED.timezone, study_id = EXCLUDED.study_id,
    -- LEAST ignores NULL: a concurrent writer of the same new participant cannot clear it
    withdrawn_at = LEAST(participants.withdrawn_at, EXCLUDED.withdrawn_at), updated_at = now()
"""
# Open occurrences whose window was still running at the withdrawal (decision 0014).
_CLOSE_CUT_SHORT = """
UPDATE occurrences o SET status = 'withdrawn', closed_at = now()
FROM participants p
WHERE p.participant_id = o.participant_id AND p.participant_id = ANY($1::text[])
  AND o.status = 'open' AND o.expires_at > p.withdrawn_at
RETURNING o.participant_id
"""
_WITHDRAWN_AT = "SELECT withdrawn_at FROM participants WHERE participant_id = $1 FOR SHARE"
_ASSIGN = """
INSERT INTO assignments (participant_id, schedule_id, definition, scheduled_through)
SELECT p.participant_id, s.id, s.def, GREATEST(p.enrolled_at, now() - interval '1 day')
FROM participants p, unnest($2::text[], $3::jsonb[]) AS s(id, def)
WHERE p.participant_id = ANY($1::text[])
ON CONFLICT (participant_id, schedule_id) DO NOTHING
RETURNING participant_id, schedule_id
"""
# A new study version's schedules for the study's participants enrolled before it. Locked
# in participant order (as _LOCK_PARTICIPANTS does) so that this and the participants
# consumer never wait for each other in a cycle.
_LOCK_STUDY = """
SELECT participant_id FROM participants WHERE study_id = $1 AND withdrawn_at IS NULL
ORDER BY participant_id FOR SHARE
"""
_DECLARED_STUDIES = "SELECT DISTINCT study_id FROM participants WHERE study_id <> $1"
_INSERT_VISITS = """
INSERT INTO visit_anchors (participant_id, visit_id, anchored_at)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[]) ON CONFLICT DO NOTHING
RETURNING participant_id, visit_id, anchored_at
"""
# The share lock on the participant (skipped while a withdrawal is being written) means a
# withdrawal either commits before the claim and is seen, or waits for this tick and then
# closes what the tick opened. A withdrawn participant's assignments stop at withdrawn_at.
_CLAIM_ASSIGNMENTS = """
SELECT a.participant_id, a.schedule_id, a.definition, a.scheduled_through, p.timezone, p.enrolled_at,
       p.withdrawn_at, p.study_id,
       COALESCE((SELECT array_agg(v.anchored_at) FROM visit_anchors v
                 WHERE v.participant_id = a.participant_id), '{}') AS visits
FROM assignments a JOIN participants p USING (participant_id)
WHERE a.scheduled_through < LEAST($1, p.withdrawn_at)
ORDER BY a.scheduled_through LIMIT $2
FOR UPDATE OF a SKIP LOCKED FOR SHARE OF p SKIP LOCKED
"""
_ADVANCE = """
UPDATE assignments SET scheduled_through = $3 WHERE participant_id = $1 AND schedule_id = $2
"""
_INSERT_OCCURRENCES = """
INSERT INTO occurrences (occurrence_id, participant_id, schedule_id, questionnaire_id,
                         questionnaire_version, due_at, expires_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],
                     $6::timestamptz[], $7::timestamptz[])
ON CONFLICT (occurrence_id) DO NOTHING
RETURNING occurrence_id
"""
_EXPIRE = """
UPDATE occurrences o SET status = 'missed', closed_at = $1
WHERE o.occurrence_id IN (
    SELECT occurrence_id FROM occurrences WHERE status = 'open' AND expires_at <= $1
    ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING o.occurrence_id, o.participant_id, o.questionnaire_id, o.questionnaire_version,
          o.due_at, o.expires_at,
          COALESCE((SELECT p.study_id FROM participants p WHERE p.participant_id = o.participant_id),
                   'default') AS study_id
"""
_LOCK_OCCURRENCE = """
SELECT occurrence_id, participant_id, questionnaire_id, questionnaire_version, due_at, expires_at,
       status, response_id
FROM occurrences WHERE occurrence_id = $1 AND participant_id = $2 FOR UPDATE
"""
# An on-time answer completes the occurrence even if its window was already closed as
# missed: an offline app may upload hours after the participant answered in time.
_ANSWER_OCCURRENCE = """
UPDATE occurrences
SET response_id = $2, answered_outside_window = NOT $3,
    status = CASE WHEN $3 THEN 'completed' ELSE status END,
    closed_at = CASE WHEN $3 THEN now() ELSE closed_at END
WHERE occurrence_id = $1
"""
_INSERT_RESPONSE = """
INSERT INTO responses (response_id, version, participant_id, questionnaire_id, questionnaire_version,
                       occurrence_id, language, authored_at, received_at, answers, scores, on_time,
                       flags, author, reason, request_digest)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14, $15, $16)
ON CONFLICT (response_id, version) DO NOTHING
RETURNING version
"""
_RESPONSE_COLUMNS = """
response_id, version, participant_id, questionnaire_id, questionnaire_version, occurrence_id,
language, authored_at, received_at, answers, scores, on_time, flags, author, reason, request_digest
"""
_VERSIONS = f"SELECT {_RESPONSE_COLUMNS} FROM responses WHERE response_id = $1 ORDER BY version"  # noqa: S608
_LOCK_FIRST = (
    "SELECT participant_id FROM responses WHERE response_id = $1 AND version = 1 FOR UPDATE"
)
_RESPONSES_OF = f"""
SELECT {_RESPONSE_COLUMNS} FROM responses WHERE participant_id = $1
ORDER BY authored_at, response_id, version
"""  # noqa: S608 - constant column list


@dataclass(frozen=True)
class Assignment:
    participant_id: str
    schedule: Schedule
    scheduled_through: datetime
    timezone: str
    enrolled_at: datetime
    withdrawn_at: datetime | None
    visits: list[datetime]
    study_id: str = DEFAULT_STUDY


async def publish_questionnaire(conn: DbConnection, q: Questionnaire) -> str:
    """'published', 'unchanged' (same content already there) or 'conflict' (immutable)."""
    body = q.model_dump_json()
    if await conn.fetchval(_INSERT_QUESTIONNAIRE, q.id, q.version, q.digest(), body) is not None:
        return "published"
    existing = await conn.fetchval(_DIGEST_OF, q.id, q.version)
    return "unchanged" if existing == q.digest() else "conflict"


async def questionnaires(db: Db) -> list[Questionnaire]:
    return [
        Questionnaire.model_validate_json(r["definition"])
        for r in await db.fetch(_ALL_QUESTIONNAIRES)
    ]


@dataclass(frozen=True)
class Upserted:
    assigned: list[tuple[str, str]]  # (participant_id, schedule_id) newly assigned
    withdrawn: dict[str, datetime]  # participants whose withdrawal is new (or earlier)


async def upsert_participants(
    conn: DbConnection,
    events: Sequence[ParticipantState],
    schedules: Mapping[str, Sequence[Schedule]],
) -> Upserted:
    """Upsert participants (site, timezone, study, withdrawal) and assign each the
    schedules of their study (`schedules` by study id)."""
    by_id: dict[str, list[ParticipantState]] = {}
    for e in events:
        by_id.setdefault(e.participant_id, []).append(e)
    ids = sorted(by_id)
    before = {
        r["participant_id"]: r["withdrawn_at"] for r in await conn.fetch(_LOCK_PARTICIPANTS, ids)
    }
    after = {p: withdrawal.withdrawn_at(before.get(p), by_id[p]) for p in ids}
    latest = [by_id[p][-1] for p in ids]
    await conn.execute(
        _UPSERT_PARTICIPANTS,
        ids,
        [e.site_id for e in latest],
        [e.timezone for e in latest],
        [by_id[p][0].occurred_at for p in ids],  # only used when the participant is new
        [after[p] for p in ids],
        [e.study_id for e in latest],
    )
    assigned: list[tuple[str, str]] = []
    for study_id in sorted({e.study_id for e in latest}):
        members = [e.participant_id for e in latest if e.study_id == study_id]
        assigned += await _assign(conn, members, schedules.get(study_id, ()))
    return Upserted(
        assigned, {p: at for p, at in after.items() if at is not None and at != before.get(p)}
    )


async def _assign(
    conn: DbConnection, participant_ids: Sequence[str], schedules: Sequence[Schedule]
) -> list[tuple[str, str]]:
    if not participant_ids or not schedules:
        return []
    rows = await conn.fetch(
        _ASSIGN,
        list(participant_ids),
        [s.schedule_id for s in schedules],
        [s.model_dump_json() for s in schedules],
    )
    return [(r["participant_id"], r["schedule_id"]) for r in rows]


async def declared_studies(db: Db) -> list[str]:
    """The studies (other than the default) that ePRO has participants of."""
    return sorted(r["study_id"] for r in await db.fetch(_DECLARED_STUDIES, DEFAULT_STUDY))


async def assign_to_study(
    conn: DbConnection, study_id: str, schedules: Sequence[Schedule]
) -> list[tuple[str, str]]:
    """Assign `schedules` to the study's participants who have not withdrawn; return the
    (participant, schedule) pairs that were new."""
    if not schedules:
        return []
    ids = [r["participant_id"] for r in await conn.fetch(_LOCK_STUDY, study_id)]
    return await _assign(conn, ids, schedules)


async def close_cut_short(conn: DbConnection, participant_ids: Sequence[str]) -> dict[str, int]:
    """Close the open occurrences a withdrawal cut short; return how many per participant."""
    closed: dict[str, int] = {}
    for r in await conn.fetch(_CLOSE_CUT_SHORT, list(participant_ids)):
        closed[r["participant_id"]] = closed.get(r["participant_id"], 0) + 1
    return closed


async def withdrawn_at(conn: DbConnection, participant_id: str) -> datetime | None:
    """The participant's withdrawal time, share-locked until the caller's transaction ends."""
    value: datetime | None = await conn.fetchval(_WITHDRAWN_AT, participant_id)
    return value


async def add_visit_anchors(
    db: Db, rows: Sequence[tuple[str, UUID, datetime]]
) -> list[tuple[str, UUID, datetime]]:
    """Store visit anchors; return those that were new."""
    added = await db.fetch(_INSERT_VISITS, *(list(col) for col in zip(*rows, strict=True)))
    return [(r["participant_id"], r["visit_id"], r["anchored_at"]) for r in added]


async def claim_assignments(conn: DbConnection, now: datetime, limit: int) -> list[Assignment]:
    return [
        Assignment(
            r["participant_id"],
            Schedule.model_validate_json(r["definition"]),
            r["scheduled_through"],
            r["timezone"],
            r["enrolled_at"],
            r["withdrawn_at"],
            list(r["visits"]),
            r["study_id"],
        )
        for r in await conn.fetch(_CLAIM_ASSIGNMENTS, now, limit)
    ]


async def advance(conn: DbConnection, a: Assignment, through: datetime) -> None:
    await conn.execute(_ADVANCE, a.participant_id, a.schedule.schedule_id, through)


async def insert_occurrences(
    conn: DbConnection, participant_id: str, found: Sequence[Occurrence]
) -> set[UUID]:
    """Store occurrences; return the ids that were new (the only ones to announce)."""
    if not found:
        return set()
    rows = await conn.fetch(
        _INSERT_OCCURRENCES,
        [o.occurrence_id for o in found],
        [participant_id] * len(found),
        [o.schedule_id for o in found],
        [o.questionnaire_id for o in found],
        [o.questionnaire_version for o in found],
        [o.due_at for o in found],
        [o.expires_at for o in found],
    )
    return {r["occurrence_id"] for r in rows}


async def study_of(conn: DbConnection, participant_id: str) -> str:
    """The participant's study (the default one for a participant not enrolled here)."""
    found: str | None = await conn.fetchval(
        "SELECT study_id FROM participants WHERE participant_id = $1", participant_id
    )
    return found or DEFAULT_STUDY


async def expire_open(conn: DbConnection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(_EXPIRE, now, limit))


async def lock_occurrence(
    conn: DbConnection, occurrence_id: UUID, participant_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(_LOCK_OCCURRENCE, occurrence_id, participant_id)


async def answer_occurrence(
    conn: DbConnection, occurrence_id: UUID, response_id: UUID, on_time: bool
) -> None:
    await conn.execute(_ANSWER_OCCURRENCE, occurrence_id, response_id, on_time)


async def insert_response(conn: DbConnection, row: ResponseVersion) -> bool:
    """False when (response_id, version) already exists."""
    return (
        await conn.fetchval(
            _INSERT_RESPONSE,
            row.response_id,
            row.version,
            row.participant_id,
            row.questionnaire_id,
            row.questionnaire_version,
            row.occurrence_id,
            row.language,
            row.authored_at,
            row.received_at,
            json.dumps(row.answers),
            json.dumps(row.scores),
            row.on_time,
            row.flags,
            row.author,
            row.reason,
            row.request_digest,
        )
        is not None
    )


def _response(r: asyncpg.Record) -> ResponseVersion:
    return ResponseVersion(
        response_id=r["response_id"],
        version=r["version"],
        participant_id=r["participant_id"],
        questionnaire_id=r["questionnaire_id"],
        questionnaire_version=r["questionnaire_version"],
        occurrence_id=r["occurrence_id"],
        language=r["language"],
        authored_at=r["authored_at"],
        received_at=r["received_at"],
        answers=json.loads(r["answers"]),
        scores=json.loads(r["scores"]),
        on_time=r["on_time"],
        flags=list(r["flags"]),
        author=r["author"],
        reason=r["reason"],
        request_digest=r["request_digest"],
    )


async def versions(db: Db, response_id: UUID) -> list[ResponseVersion]:
    return [_response(r) for r in await db.fetch(_VERSIONS, response_id)]


async def lock_response(conn: DbConnection, response_id: UUID) -> str | None:
    """Serialise corrections of one response; returns its participant."""
    value = await conn.fetchval(_LOCK_FIRST, response_id)
    return None if value is None else str(value)


async def responses_of(db: Db, participant_id: str) -> list[ResponseVersion]:
    return [_response(r) for r in await db.fetch(_RESPONSES_OF, participant_id)]

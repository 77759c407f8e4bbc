"""Consent gating where data is collected (issue 18, decision 0080): ingest, ePRO and
telehealth each follow the consents topic into a `consents` table of their own schema
(one row per participant, the highest revision wins) and refuse data of a scope the
participant has not consented to: 403 `consent_required`, naming the scope.

Only studies whose file enables the `consent` module are gated; the implicit default
study and every other study collect as before. The check is one primary-key lookup, made
once per request (a batch of readings is one participant's), never a call to the consent
service.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.consents import ConsentScope, ConsentState, ScopeConsent
from trialstream.studies import Module, StudyRegistry

# Each gating service's migration creates `consents (participant_id PK, study_id,
# revision, scopes jsonb {scope: {since, until}}, withdrawn_at, updated_at)`.
_UPSERT = """
INSERT INTO consents (participant_id, study_id, revision, scopes, withdrawn_at)
SELECT p, s, r, sc::jsonb, w
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[]) AS t(p, s, r, sc, w)
ON CONFLICT (participant_id) DO UPDATE
SET study_id = EXCLUDED.study_id, revision = EXCLUDED.revision, scopes = EXCLUDED.scopes,
    withdrawn_at = EXCLUDED.withdrawn_at, updated_at = now()
WHERE consents.revision < EXCLUDED.revision
RETURNING participant_id
"""
_SCOPE = """
SELECT scopes -> $2::text ->> 'since' AS since, scopes -> $2::text ->> 'until' AS until
FROM consents WHERE participant_id = $1
"""

CONSENT_REQUIRED = "consent_required"


def gated(studies: StudyRegistry, study_id: str) -> bool:
    """Whether the study's file enables the consent module (the default study does not:
    it predates consent and keeps collecting as it did)."""
    study = studies.get(study_id)
    return study is not None and study.enables(Module.CONSENT)


def latest(events: Sequence[ConsentState]) -> list[ConsentState]:
    """The highest revision per participant of a batch (one upsert per row)."""
    newest: dict[str, ConsentState] = {}
    for event in events:
        seen = newest.get(event.participant_id)
        if seen is None or seen.revision < event.revision:
            newest[event.participant_id] = event
    return list(newest.values())


def _scopes_json(event: ConsentState) -> str:
    return json.dumps(
        {
            str(s.scope): {
                "since": s.since.isoformat(),
                "until": None if s.until is None else s.until.isoformat(),
            }
            for s in event.scopes
        },
        sort_keys=True,
    )


async def record(conn: DbConnection, events: Sequence[ConsentState]) -> set[str]:
    """Keep each participant's newest consent; idempotent (a replayed or older revision
    changes nothing). Returns the participants whose row changed."""
    rows = latest(events)
    if not rows:
        return set()
    changed = await conn.fetch(
        _UPSERT,
        [e.participant_id for e in rows],
        [e.study_id for e in rows],
        [e.revision for e in rows],
        [_scopes_json(e) for e in rows],
        [e.withdrawn_at for e in rows],
    )
    return {r["participant_id"] for r in changed}


async def scope_of(
    conn: DbConnection | asyncpg.Pool, participant_id: str, scope: ConsentScope
) -> ScopeConsent | None:
    """The participant's consent to `scope`, as last announced; None if never given."""
    row = await conn.fetchrow(_SCOPE, participant_id, str(scope))
    if row is None or row["since"] is None:
        return None
    until = row["until"]
    return ScopeConsent(
        scope=scope,
        since=datetime.fromisoformat(row["since"]),
        until=None if until is None else datetime.fromisoformat(until),
    )


def consent_required(scope: ConsentScope, message: str | None = None) -> Refused:
    return Refused(
        Kind.FORBIDDEN,
        CONSENT_REQUIRED,
        message or f"The participant has not consented to '{scope}' (or withdrew it).",
        [{"field": "scope", "code": CONSENT_REQUIRED, "message": str(scope), "scope": str(scope)}],
    )


async def require(
    conn: DbConnection | asyncpg.Pool, participant_id: str, scope: ConsentScope, at: datetime
) -> ScopeConsent:
    """Refuse (403 `consent_required`) unless the participant's consent to `scope` covers
    the moment `at`."""
    consent = await scope_of(conn, participant_id, scope)
    if consent is None or not consent.covers(at):
        raise consent_required(scope)
    return consent

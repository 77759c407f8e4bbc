"""Consent gating where data is collected (issue 18, decision 0080): ingest, ePRO and
telehealth each follow the consents topic into a `consents` table of their own schema
(one row per participant, the highest revision wins) and refuse data of a scope the
participant has not consented to: 403 `consent_required`, naming the scope.

Only studies whose file enables the `consent` module are gated; the implicit default
study and every other study collect as before. The check is one primary-key lookup, made
once per request (a batch of readings is one participant's), never a call to the consent
service.

After a protocol amendment asks for re-consent by a date, a study whose file says
`consent: {after_reconsent_deadline: pause}` collects nothing measured after that day
(UTC) until the participant signs the new version: 403 `reconsent_overdue` (decision 0088).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.consents import ConsentScope, ConsentState, ScopeConsent
from trialstream.studies import Module, StudyRegistry

# Each gating service's migrations create `consents (participant_id PK, study_id,
# revision, scopes jsonb {scope: {since, until}}, withdrawn_at, updated_at,
# reconsent_version, reconsent_by)`.
_UPSERT = """
INSERT INTO consents
    (participant_id, study_id, revision, scopes, withdrawn_at, reconsent_version, reconsent_by)
SELECT p, s, r, sc::jsonb, w, rv, rb
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], $6::int[],
            $7::date[]) AS t(p, s, r, sc, w, rv, rb)
ON CONFLICT (participant_id) DO UPDATE
SET study_id = EXCLUDED.study_id, revision = EXCLUDED.revision, scopes = EXCLUDED.scopes,
    withdrawn_at = EXCLUDED.withdrawn_at, reconsent_version = EXCLUDED.reconsent_version,
    reconsent_by = EXCLUDED.reconsent_by, updated_at = now()
WHERE consents.revision < EXCLUDED.revision
RETURNING participant_id
"""
_SCOPE = """
SELECT scopes -> $2::text ->> 'since' AS since, scopes -> $2::text ->> 'until' AS until,
       reconsent_version, reconsent_by
FROM consents WHERE participant_id = $1
"""

CONSENT_REQUIRED = "consent_required"
RECONSENT_OVERDUE = "reconsent_overdue"


@dataclass(frozen=True)
class Standing:
    """A participant's consent to one scope, and the re-consent an amendment asks of them
    (cleared by signing the new version: the consent service announces a fresh state)."""

    consent: ScopeConsent
    reconsent_version: int | None = None
    reconsent_by: date | None = None

    def paused_from(self, pause: bool) -> datetime | None:
        """Where the study pauses after the deadline: the first instant after the deadline
        day ends in UTC (the day itself is still in time, as the consent service's
        `overdue` counts it); None when nothing pauses."""
        if not pause or self.reconsent_by is None:
            return None
        return datetime.combine(self.reconsent_by + timedelta(days=1), time(), UTC)


def gated(studies: StudyRegistry, study_id: str) -> bool:
    """Whether the study's file enables the consent module (the default study does not:
    it predates consent and keeps collecting as it did)."""
    study = studies.get(study_id)
    return study is not None and study.enables(Module.CONSENT)


def pauses(studies: StudyRegistry, study_id: str) -> bool:
    """Whether the study stops collecting once a re-consent deadline has passed."""
    study = studies.get(study_id)
    return study is not None and study.consent_rules().after_reconsent_deadline == "pause"


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
        [e.reconsent_version for e in rows],
        [e.reconsent_by for e in rows],
    )
    return {r["participant_id"] for r in changed}


async def standing(
    conn: DbConnection | asyncpg.Pool, participant_id: str, scope: ConsentScope
) -> Standing | None:
    """The participant's consent to `scope` as last announced, with any re-consent asked
    of them; None if never given."""
    row = await conn.fetchrow(_SCOPE, participant_id, str(scope))
    if row is None or row["since"] is None:
        return None
    until = row["until"]
    consent = ScopeConsent(
        scope=scope,
        since=datetime.fromisoformat(row["since"]),
        until=None if until is None else datetime.fromisoformat(until),
    )
    return Standing(consent, row["reconsent_version"], row["reconsent_by"])


async def scope_of(
    conn: DbConnection | asyncpg.Pool, participant_id: str, scope: ConsentScope
) -> ScopeConsent | None:
    """The participant's consent to `scope`, as last announced; None if never given."""
    found = await standing(conn, participant_id, scope)
    return None if found is None else found.consent


def consent_required(scope: ConsentScope, message: str | None = None) -> Refused:
    return Refused(
        Kind.FORBIDDEN,
        CONSENT_REQUIRED,
        message or f"The participant has not consented to '{scope}' (or withdrew it).",
        [{"field": "scope", "code": CONSENT_REQUIRED, "message": str(scope), "scope": str(scope)}],
    )


def reconsent_overdue(scope: ConsentScope, found: Standing) -> Refused:
    version, by = found.reconsent_version, found.reconsent_by
    return Refused(
        Kind.FORBIDDEN,
        RECONSENT_OVERDUE,
        f"The study pauses '{scope}' after a re-consent deadline: version {version} of the "
        f"consent was to be signed by {by} (UTC) and has not been.",
        [
            {
                "field": "scope",
                "code": RECONSENT_OVERDUE,
                "message": str(scope),
                "scope": str(scope),
                "reconsent_version": version,
                "reconsent_by": None if by is None else by.isoformat(),
            }
        ],
    )


async def require(
    conn: DbConnection | asyncpg.Pool,
    participant_id: str,
    scope: ConsentScope,
    at: datetime,
    *,
    pause_after_deadline: bool = False,
) -> ScopeConsent:
    """Refuse (403 `consent_required`) unless the participant's consent to `scope` covers
    the moment `at`; with `pause_after_deadline`, also (403 `reconsent_overdue`) when `at`
    is after a re-consent deadline the participant has not met."""
    found = await standing(conn, participant_id, scope)
    if found is None or not found.consent.covers(at):
        raise consent_required(scope)
    paused = found.paused_from(pause_after_deadline)
    if paused is not None and at >= paused:
        raise reconsent_overdue(scope, found)
    return found.consent

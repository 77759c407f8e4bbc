"""All of the consent service's SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from trialstream.db import DbConnection
from trialstream.events.consents import ConsentState
from trialstream.events.participants import ParticipantState

from consent.domain.documents import DocumentBody
from consent.domain.records import Signature

Db = DbConnection | asyncpg.Pool

# Withdrawal is final per participant id: the earliest time holds (decision 0045).
_UPSERT_PARTICIPANTS = """
INSERT INTO participants (participant_id, study_id, site_id, withdrawn_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
ON CONFLICT (participant_id) DO UPDATE
SET study_id = EXCLUDED.study_id, site_id = EXCLUDED.site_id,
    withdrawn_at = LEAST(participants.withdrawn_at, EXCLUDED.withdrawn_at),
    updated_at = now()
"""
_PARTICIPANT = """
SELECT participant_id, study_id, site_id, withdrawn_at FROM participants
WHERE participant_id = $1
"""
_LOCK_PARTICIPANT = _PARTICIPANT + " FOR UPDATE"
_DOCUMENT = """
SELECT body, sha256, requires_reconsent, reconsent_by FROM documents
WHERE study_id = $1 AND version = $2 AND site_id = $3 AND language = $4
"""
_MAX_VERSION = "SELECT max(version) FROM documents WHERE study_id = $1"
_INSERT_DOCUMENT = """
INSERT INTO documents (study_id, version, site_id, language, body, sha256,
                       requires_reconsent, reconsent_by, published_by)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)
ON CONFLICT DO NOTHING
RETURNING published_at
"""
# The newest version for a participant's site (a site's own text before the study's).
_CURRENT = """
SELECT version, site_id, language, body, sha256 FROM documents
WHERE study_id = $1 AND site_id IN ($2, '*')
ORDER BY version DESC, (site_id = '*'), language
"""
_DOCUMENTS_OF = """
SELECT version, site_id, language, sha256, requires_reconsent, reconsent_by, published_by,
       published_at
FROM documents WHERE study_id = $1 AND ($2::text IS NULL OR site_id IN ($2, '*'))
ORDER BY version, site_id, language
"""
_REQUIRED = """
SELECT version, max(reconsent_by) AS reconsent_by FROM documents
WHERE study_id = $1 AND site_id IN ($2, '*') AND requires_reconsent
GROUP BY version ORDER BY version DESC LIMIT 1
"""
_INSERT_CREDENTIAL = """
INSERT INTO app_credentials (token_hash, participant_id)
SELECT $1, participant_id FROM participants WHERE participant_id = $2
RETURNING participant_id
"""
_CREDENTIAL = """
SELECT participant_id FROM app_credentials WHERE token_hash = $1 AND revoked_at IS NULL
"""
_INSERT_PROOF = """
INSERT INTO reauth_proofs (proof_hash, participant_id, expires_at) VALUES ($1, $2, $3)
"""
_USE_PROOF = """
UPDATE reauth_proofs SET used_at = now()
WHERE proof_hash = $1 AND participant_id = $2 AND used_at IS NULL AND expires_at > now()
RETURNING proof_hash
"""
_INSERT_ATTEMPT = """
INSERT INTO comprehension_attempts (attempt_id, participant_id, study_id, version, language,
                                    answers, wrong, passed)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
"""
_ATTEMPTS = """
SELECT count(*) AS attempts,
       (array_agg(passed ORDER BY attempted_at DESC))[1] AS last_passed
FROM comprehension_attempts WHERE participant_id = $1 AND version = $2 AND language = $3
"""
_SIGNATURE_COLUMNS = """
signature_id, participant_id, study_id, site_id, version, language, document_sha256, scopes,
meaning, signed_at, representative, countersigned_by, countersigner_name,
countersign_meaning, countersigned_at
"""
_INSERT_SIGNATURE = f"""
INSERT INTO signatures ({_SIGNATURE_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, NULL, NULL, NULL, NULL)
"""  # noqa: S608 - constant column list
_SIGNATURE = f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE signature_id = $1"  # noqa: S608
_LOCK_SIGNATURE = _SIGNATURE + " FOR UPDATE"
_SIGNATURES_OF = f"""
SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE participant_id = $1 ORDER BY signed_at
"""  # noqa: S608
_COUNTERSIGN = """
UPDATE signatures SET countersigned_by = $2, countersigner_name = $3,
                      countersign_meaning = $4, countersigned_at = $5
WHERE signature_id = $1 AND countersigned_at IS NULL
"""
_STATE = "SELECT state FROM consent_states WHERE participant_id = $1"
_SAVE_STATE = """
INSERT INTO consent_states (participant_id, revision, state) VALUES ($1, $2, $3::jsonb)
ON CONFLICT (participant_id) DO UPDATE
SET revision = EXCLUDED.revision, state = EXCLUDED.state, updated_at = now()
"""
# Participants of a study (at a site) still in it, with their latest signed version.
_STANDING = """
SELECT p.participant_id, p.site_id, s.version AS signed_version, c.state
FROM participants p
LEFT JOIN LATERAL (
    SELECT version FROM signatures WHERE participant_id = p.participant_id
    ORDER BY signed_at DESC LIMIT 1
) s ON true
LEFT JOIN consent_states c USING (participant_id)
WHERE p.study_id = $1 AND ($2::text IS NULL OR p.site_id = $2) AND p.withdrawn_at IS NULL
ORDER BY p.participant_id
"""
_LATEST_SIGNATURES = """
SELECT DISTINCT ON (g.participant_id)
       g.signature_id, g.participant_id, g.study_id, g.site_id, g.version, g.language,
       g.document_sha256, g.scopes, g.meaning, g.signed_at, g.representative,
       g.countersigned_by, g.countersigner_name, g.countersign_meaning, g.countersigned_at,
       c.state
FROM signatures g LEFT JOIN consent_states c USING (participant_id)
WHERE g.study_id = $1 AND ($2::text IS NULL OR g.site_id = $2)
ORDER BY g.participant_id, g.signed_at DESC
LIMIT $3
"""


async def upsert_participants(conn: Db, events: Sequence[ParticipantState]) -> None:
    latest: dict[str, ParticipantState] = {}
    for e in events:
        latest[e.participant_id] = e
    rows = list(latest.values())
    await conn.execute(
        _UPSERT_PARTICIPANTS,
        [e.participant_id for e in rows],
        [e.study_id for e in rows],
        [e.site_id for e in rows],
        [e.withdrawal_time() for e in rows],
    )


async def participant(conn: Db, participant_id: str, *, lock: bool = False) -> Any:
    return await conn.fetchrow(_LOCK_PARTICIPANT if lock else _PARTICIPANT, participant_id)


async def document(
    conn: Db, study_id: str, version: int, site_id: str, language: str
) -> tuple[DocumentBody, str] | None:
    row = await conn.fetchrow(_DOCUMENT, study_id, version, site_id, language)
    if row is None:
        return None
    return DocumentBody.model_validate(json.loads(row["body"])), row["sha256"]


async def max_version(conn: Db, study_id: str) -> int | None:
    value = await conn.fetchval(_MAX_VERSION, study_id)
    return None if value is None else int(value)


async def insert_document(
    conn: Db,
    *,
    study_id: str,
    version: int,
    site_id: str,
    language: str,
    body: DocumentBody,
    requires_reconsent: bool,
    reconsent_by: Any,
    published_by: str,
) -> datetime | None:
    published: datetime | None = await conn.fetchval(
        _INSERT_DOCUMENT,
        study_id,
        version,
        site_id,
        language,
        body.canonical(),
        body.sha256(),
        requires_reconsent,
        reconsent_by,
        published_by,
    )
    return published


async def current_documents(conn: Db, study_id: str, site_id: str) -> list[Any]:
    """Every text of the newest version for the site (its own before the study's)."""
    rows = await conn.fetch(_CURRENT, study_id, site_id)
    if not rows:
        return []
    newest = rows[0]["version"]
    return [r for r in rows if r["version"] == newest]


async def documents_of(conn: Db, study_id: str, site_id: str | None) -> list[Any]:
    return list(await conn.fetch(_DOCUMENTS_OF, study_id, site_id))


async def required_version(conn: Db, study_id: str, site_id: str) -> Any:
    return await conn.fetchrow(_REQUIRED, study_id, site_id)


async def insert_credential(conn: Db, token_hash: str, participant_id: str) -> bool:
    return await conn.fetchval(_INSERT_CREDENTIAL, token_hash, participant_id) is not None


async def participant_for_token(conn: Db, token_hash: str) -> str | None:
    value = await conn.fetchval(_CREDENTIAL, token_hash)
    return None if value is None else str(value)


async def insert_proof(conn: Db, proof_hash: str, participant_id: str, expires: datetime) -> None:
    await conn.execute(_INSERT_PROOF, proof_hash, participant_id, expires)


async def use_proof(conn: Db, proof_hash: str, participant_id: str) -> bool:
    return await conn.fetchval(_USE_PROOF, proof_hash, participant_id) is not None


async def insert_attempt(
    conn: Db,
    attempt_id: UUID,
    participant_id: str,
    study_id: str,
    version: int,
    language: str,
    answers: dict[str, int],
    wrong: list[str],
) -> None:
    await conn.execute(
        _INSERT_ATTEMPT,
        attempt_id,
        participant_id,
        study_id,
        version,
        language,
        json.dumps(answers),
        wrong,
        not wrong,
    )


async def attempts(conn: Db, participant_id: str, version: int, language: str) -> tuple[int, bool]:
    row = await conn.fetchrow(_ATTEMPTS, participant_id, version, language)
    return (0, False) if row is None else (int(row["attempts"]), bool(row["last_passed"]))


def _signature(row: Any) -> Signature:
    rep = row["representative"]
    return Signature(
        signature_id=row["signature_id"],
        participant_id=row["participant_id"],
        study_id=row["study_id"],
        site_id=row["site_id"],
        version=row["version"],
        language=row["language"],
        document_sha256=row["document_sha256"],
        scopes=tuple(row["scopes"]),
        meaning=row["meaning"],
        signed_at=row["signed_at"],
        representative=None if rep is None else json.loads(rep),
        countersigned_by=row["countersigned_by"],
        countersigner_name=row["countersigner_name"],
        countersign_meaning=row["countersign_meaning"],
        countersigned_at=row["countersigned_at"],
    )


async def insert_signature(conn: Db, s: Signature) -> None:
    await conn.execute(
        _INSERT_SIGNATURE,
        s.signature_id,
        s.participant_id,
        s.study_id,
        s.site_id,
        s.version,
        s.language,
        s.document_sha256,
        list(s.scopes),
        s.meaning,
        s.signed_at,
        None if s.representative is None else json.dumps(s.representative),
    )


async def signature(conn: Db, signature_id: UUID, *, lock: bool = False) -> Signature | None:
    row = await conn.fetchrow(_LOCK_SIGNATURE if lock else _SIGNATURE, signature_id)
    return None if row is None else _signature(row)


async def signatures_of(conn: Db, participant_id: str) -> list[Signature]:
    return [_signature(r) for r in await conn.fetch(_SIGNATURES_OF, participant_id)]


async def countersign(
    conn: Db, signature_id: UUID, by: str, name: str, meaning: str, at: datetime
) -> None:
    await conn.execute(_COUNTERSIGN, signature_id, by, name, meaning, at)


def _state(text: str | None) -> ConsentState | None:
    return None if text is None else ConsentState.model_validate_json(text)


async def state(conn: Db, participant_id: str) -> ConsentState | None:
    return _state(await conn.fetchval(_STATE, participant_id))


async def save_state(conn: Db, new: ConsentState) -> None:
    await conn.execute(_SAVE_STATE, new.participant_id, new.revision, new.model_dump_json())


async def standing(conn: Db, study_id: str, site_id: str | None) -> list[Any]:
    return list(await conn.fetch(_STANDING, study_id, site_id))


async def latest_signatures(
    conn: Db, study_id: str, site_id: str | None, limit: int
) -> list[tuple[Signature, ConsentState | None]]:
    rows = await conn.fetch(_LATEST_SIGNATURES, study_id, site_id, limit)
    return [(_signature(r), _state(r["state"])) for r in rows]


# Erasure (decision 0086): requests, per-service progress, and this service's own part.
_SAVE_REQUEST = """
INSERT INTO erasure_requests (participant_id, request_id, study_id, legal_basis, requested_by,
                              actor, keep_collected_data)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (participant_id) DO UPDATE
SET request_id = EXCLUDED.request_id, legal_basis = EXCLUDED.legal_basis,
    requested_by = EXCLUDED.requested_by, actor = EXCLUDED.actor,
    keep_collected_data = EXCLUDED.keep_collected_data, requested_at = now()
RETURNING requested_at
"""
_SAVE_PROGRESS = """
INSERT INTO erasure_progress (participant_id, service, request_id, erased, done_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::jsonb[], $5::timestamptz[])
ON CONFLICT (participant_id, service) DO UPDATE
SET request_id = EXCLUDED.request_id, erased = EXCLUDED.erased, done_at = EXCLUDED.done_at
"""
_ERASE_OWN = """
WITH credentials AS (DELETE FROM app_credentials WHERE participant_id = $1 RETURNING 1),
     proofs AS (DELETE FROM reauth_proofs WHERE participant_id = $1 RETURNING 1),
     representatives AS (
         UPDATE signatures SET representative = NULL
         WHERE participant_id = $1 AND representative IS NOT NULL RETURNING 1)
SELECT (SELECT count(*) FROM credentials) AS credentials,
       (SELECT count(*) FROM proofs) AS reauth_proofs,
       (SELECT count(*) FROM representatives) AS representative_names
"""


async def save_erasure_request(conn: Db, request: Any, actor: str) -> datetime:
    requested: datetime = await conn.fetchval(
        _SAVE_REQUEST,
        request.participant_id,
        request.request_id,
        request.study_id,
        str(request.legal_basis),
        request.requested_by,
        actor,
        request.keep_collected_data,
    )
    return requested


async def erasure_request(conn: Db, participant_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM erasure_requests WHERE participant_id = $1", participant_id
    )


async def erasure_progress(conn: Db, participant_id: str) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT * FROM erasure_progress WHERE participant_id = $1 ORDER BY service",
            participant_id,
        )
    )


async def save_progress(conn: Db, done: Sequence[Any]) -> None:
    await conn.execute(
        _SAVE_PROGRESS,
        [d.participant_id for d in done],
        [d.service for d in done],
        [d.request_id for d in done],
        [json.dumps(d.erased) for d in done],
        [d.occurred_at for d in done],
    )


async def erase_own(conn: Db, participant_id: str) -> dict[str, int]:
    row = await conn.fetchrow(_ERASE_OWN, participant_id)
    return {k: int(v) for k, v in dict(row or {}).items()}

"""Credentials this service issues: participant app tokens (decision 0010), stored only as
SHA-256 digests. Staff carry access tokens from the identity issuer (trialstream.staff)."""

from __future__ import annotations

import asyncpg
from trialstream import audit
from trialstream.auth import hash_token, new_token
from trialstream.identity import Principal
from trialstream.staff import acting

_ISSUE_APP = """
INSERT INTO app_credentials (token_hash, participant_id)
SELECT $1, participant_id FROM participants WHERE participant_id = $2
RETURNING participant_id
"""
_REVOKE_APP = """
UPDATE app_credentials SET revoked_at = now() WHERE participant_id = $1 AND revoked_at IS NULL
RETURNING token_hash
"""
_APP_BY_HASH = """
SELECT participant_id FROM app_credentials WHERE token_hash = $1 AND revoked_at IS NULL
"""


async def issue_app_credential(
    pool: asyncpg.Pool, by: Principal, participant_id: str, study_id: str
) -> str | None:
    """A new app token for a participant ePRO knows; None if it does not (yet)."""
    token = new_token("app")
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(_ISSUE_APP, hash_token(token), participant_id) is None:
            return None
        await audit.record(
            conn,
            actor=by.actor,
            actor_detail=acting(by, study_id),
            action="app_credential.issued",
            entity="app_credential",
            entity_id=participant_id,
            new={"status": "active"},
        )
    return token


async def revoke_app_credentials(
    pool: asyncpg.Pool, by: Principal, participant_id: str, study_id: str
) -> int:
    async with pool.acquire() as conn, conn.transaction():
        revoked = len(await conn.fetch(_REVOKE_APP, participant_id))
        if revoked:
            await audit.record(
                conn,
                actor=by.actor,
                actor_detail=acting(by, study_id),
                action="app_credential.revoked",
                entity="app_credential",
                entity_id=participant_id,
                old={"status": "active", "credentials": revoked},
                new={"status": "revoked", "credentials": revoked},
            )
    return revoked


async def participant_for_app_token(pool: asyncpg.Pool, token: str) -> str | None:
    value = await pool.fetchval(_APP_BY_HASH, hash_token(token))
    return None if value is None else str(value)

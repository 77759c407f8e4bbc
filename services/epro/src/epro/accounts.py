"""Credentials this service issues: participant app tokens and site staff tokens (decisions
0010, 0011), plus who may read which site. Tokens are stored only as SHA-256 digests."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncpg
from trialstream import audit
from trialstream.auth import hash_token, new_token

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
_INSERT_STAFF = """
INSERT INTO staff (staff_id, site_id, role, token_hash) VALUES ($1, $2, $3, $4)
ON CONFLICT (staff_id) DO NOTHING RETURNING staff_id
"""
_STAFF_BY_HASH = "SELECT staff_id, site_id, role FROM staff WHERE token_hash = $1"


class Role(StrEnum):
    SITE_STAFF = "site_staff"  # their own site only
    MONITOR = "monitor"  # CRO monitor: every site, read-only


@dataclass(frozen=True)
class Staff:
    staff_id: str
    site_id: str
    role: Role

    def may_read(self, site_id: str | None) -> bool:
        return self.role is Role.MONITOR or (site_id is not None and site_id == self.site_id)

    def site_scope(self, requested: str | None) -> str | None:
        """The site a listing is limited to (None = every site, monitors only)."""
        if self.role is Role.MONITOR:
            return requested
        if requested is not None and requested != self.site_id:
            raise PermissionError(f"staff of site '{self.site_id}' cannot read site '{requested}'")
        return self.site_id


async def issue_app_credential(pool: asyncpg.Pool, participant_id: str) -> str | None:
    """A new app token for a participant ePRO knows; None if it does not (yet)."""
    token = new_token("app")
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(_ISSUE_APP, hash_token(token), participant_id) is None:
            return None
        await audit.record(
            conn,
            actor="admin",
            action="app_credential.issued",
            entity="app_credential",
            entity_id=participant_id,
            new={"status": "active"},
        )
    return token


async def revoke_app_credentials(pool: asyncpg.Pool, participant_id: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        revoked = len(await conn.fetch(_REVOKE_APP, participant_id))
        if revoked:
            await audit.record(
                conn,
                actor="admin",
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


async def create_staff(pool: asyncpg.Pool, staff_id: str, site_id: str, role: Role) -> str | None:
    """The new staff token, or None if the staff id exists."""
    token = new_token("staff")
    async with pool.acquire() as conn, conn.transaction():
        if (
            await conn.fetchrow(_INSERT_STAFF, staff_id, site_id, str(role), hash_token(token))
            is None
        ):
            return None
        await audit.record(
            conn,
            actor="admin",
            action="staff.created",
            entity="staff",
            entity_id=staff_id,
            new={"site_id": site_id, "role": role},
        )
    return token


async def staff_for_token(pool: asyncpg.Pool, token: str) -> Staff | None:
    row = await pool.fetchrow(_STAFF_BY_HASH, hash_token(token))
    return Staff(row["staff_id"], row["site_id"], Role(row["role"])) if row else None

"""The issuer's use cases: people and their grants, sign-in, refresh, logout, revocation.

Every change is audited in this schema's chain with the person who made it; what the other
services must act on (an ended session, revoked access) goes to the `staff-access` topic
through the outbox, in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from trialstream import audit, outbox
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.identity import StaffAccessRevoked, StaffSessionEnded
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Principal, Role, SigningKey

from identity.passwords import hash_password, hash_password_async, password_matches_async
from identity.settings import IdentitySettings

# Compared against when the sign-in name is unknown, so the answer takes as long either way.
_NOBODY = hash_password(secrets.token_urlsafe(16))

_KEY = "SELECT private_pem FROM signing_keys ORDER BY created_at DESC, kid LIMIT 1"
_ADD_KEY = "INSERT INTO signing_keys (kid, private_pem) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_INSERT_PERSON = """
INSERT INTO people (subject, display_name, password_hash) VALUES ($1, $2, $3)
ON CONFLICT (subject) DO NOTHING RETURNING subject
"""
_PERSON = """
SELECT subject, display_name, password_hash, revoked_at, failed_sign_ins, locked_until
FROM people WHERE subject = $1
"""
_GRANTS = (
    "SELECT role, study_id, site_id FROM grants WHERE subject = $1 ORDER BY role, study_id, site_id"
)
_DELETE_GRANTS = "DELETE FROM grants WHERE subject = $1"
_INSERT_GRANTS = """
INSERT INTO grants (subject, role, study_id, site_id)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING
"""
_FAILED = """
UPDATE people SET failed_sign_ins = failed_sign_ins + 1,
    locked_until = CASE WHEN failed_sign_ins + 1 >= $2 THEN now() + make_interval(secs => $3)
                        ELSE locked_until END
WHERE subject = $1 RETURNING failed_sign_ins
"""
_SUCCEEDED = "UPDATE people SET failed_sign_ins = 0, locked_until = NULL WHERE subject = $1"
_OPEN_SESSION = """
INSERT INTO sessions (session_id, subject, auth_time, expires_at, refresh_hash)
VALUES ($1, $2, now(), now() + make_interval(secs => $3), $4) RETURNING auth_time
"""
_REFRESH = """
UPDATE sessions SET refresh_hash = $2
WHERE refresh_hash = $1 AND ended_at IS NULL AND expires_at > now()
RETURNING session_id, subject, auth_time
"""
_END_SESSION = """
UPDATE sessions SET ended_at = now() WHERE session_id = $1 AND ended_at IS NULL
RETURNING subject, ended_at
"""
_END_ALL = """
UPDATE sessions SET ended_at = now() WHERE subject = $1 AND ended_at IS NULL
RETURNING session_id
"""
_REVOKE = """
UPDATE people SET revoked_at = now() WHERE subject = $1 AND revoked_at IS NULL
RETURNING revoked_at
"""
_PEOPLE = """
SELECT p.subject, p.display_name, p.revoked_at IS NOT NULL AS revoked,
       coalesce(json_agg(json_build_object('role', g.role, 'study', g.study_id, 'site', g.site_id))
                FILTER (WHERE g.role IS NOT NULL), '[]') AS grants
FROM people p LEFT JOIN grants g USING (subject)
GROUP BY p.subject ORDER BY p.subject
"""


@dataclass(frozen=True)
class Person:
    subject: str
    name: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def signing_key(pool: asyncpg.Pool) -> SigningKey:
    """The newest signing key; the first replica to start creates it (replicas agree)."""
    async with pool.acquire() as conn:
        pem = await conn.fetchval(_KEY)
        if pem is None:
            fresh = SigningKey.generate()
            await conn.execute(_ADD_KEY, fresh.kid, fresh.pem().decode("ascii"))
            pem = await conn.fetchval(_KEY)
    return SigningKey.from_pem(str(pem).encode("ascii"))


def check_may_grant(by: Principal, grants: Sequence[Grant]) -> None:
    """A study admin grants roles in their own study, never platform_admin; a platform
    admin grants anything."""
    for grant in grants:
        if by.is_platform_admin:
            continue
        if grant.role is Role.PLATFORM_ADMIN or grant.study_id is None:
            raise Refused(
                Kind.FORBIDDEN, "role_not_allowed", "Only a platform admin grants platform_admin."
            )
        if Role.STUDY_ADMIN not in by.roles(grant.study_id):
            raise Refused(
                Kind.FORBIDDEN,
                "role_not_allowed",
                f"Only a study admin of '{grant.study_id}' grants roles in it.",
            )


async def create_person(
    pool: asyncpg.Pool,
    by: Principal,
    subject: str,
    name: str,
    password: str,
    grants: Sequence[Grant],
) -> Person:
    check_may_grant(by, grants)
    hashed = await hash_password_async(password)
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(_INSERT_PERSON, subject, name, hashed) is None:
            raise Refused(Kind.CONFLICT, "person_exists", f"'{subject}' already exists.")
        await _write_grants(conn, subject, grants)
        await audit.record(
            conn,
            actor=by.actor,
            actor_detail=acting_anywhere(by),
            action="person.created",
            entity="person",
            entity_id=subject,
            new={"grants": [g.claim() for g in grants]},
        )
    return Person(subject, name, tuple(grants))


async def set_grants(
    pool: asyncpg.Pool, by: Principal, subject: str, grants: Sequence[Grant], reason: str
) -> Person:
    """Replace a person's grants; tokens issued before carry the old ones, so they are
    revoked (the person signs in again, or refreshes, to get the new ones)."""
    async with pool.acquire() as conn, conn.transaction():
        person = await _person_for_update(conn, subject)
        old = await _grants(conn, subject)
        check_may_grant(by, [*old, *grants])
        await conn.execute(_DELETE_GRANTS, subject)
        await _write_grants(conn, subject, grants)
        await _announce_revocation(conn, subject, datetime.now(UTC))
        await audit.record(
            conn,
            actor=by.actor,
            actor_detail=acting_anywhere(by),
            action="person.grants_changed",
            entity="person",
            entity_id=subject,
            old={"grants": [g.claim() for g in old]},
            new={"grants": [g.claim() for g in grants]},
            reason=reason,
        )
    return Person(subject, person["display_name"], tuple(grants))


async def revoke(pool: asyncpg.Pool, by: Principal, subject: str, reason: str) -> None:
    """Access revoked: no more sign-ins, every session ended, every token void on every
    service as soon as it reads the staff-access topic."""
    async with pool.acquire() as conn, conn.transaction():
        await _person_for_update(conn, subject)
        check_may_grant(by, await _grants(conn, subject))
        revoked_at = await conn.fetchval(_REVOKE, subject)
        if revoked_at is None:
            raise Refused(Kind.CONFLICT, "already_revoked", f"'{subject}' is already revoked.")
        await conn.fetch(_END_ALL, subject)
        await _announce_revocation(conn, subject, revoked_at)
        await audit.record(
            conn,
            actor=by.actor,
            actor_detail=acting_anywhere(by),
            action="person.revoked",
            entity="person",
            entity_id=subject,
            old={"access": "active"},
            new={"access": "revoked"},
            reason=reason,
        )


async def sign_in(
    pool: asyncpg.Pool, settings: IdentitySettings, key: SigningKey, subject: str, password: str
) -> Tokens:
    """Password sign-in: a new session and its first tokens. Every refusal reads the same
    (`invalid_grant`), whether the name is unknown, the password wrong or access revoked."""
    row = await pool.fetchrow(_PERSON, subject)
    ok = await password_matches_async(password, row["password_hash"] if row else _NOBODY)
    refused = Refused(Kind.UNAUTHORIZED, "invalid_grant", "Unknown name or wrong password.")
    if row is None or row["revoked_at"] is not None:
        raise refused
    if row["locked_until"] is not None and row["locked_until"] > datetime.now(UTC):
        raise Refused(
            Kind.TOO_MANY,
            "account_locked",
            "Too many failed sign-ins: try again later or ask an admin.",
            headers={"Retry-After": str(int(settings.lockout_minutes * 60))},
        )
    async with pool.acquire() as conn, conn.transaction():
        if not ok:
            await conn.execute(
                _FAILED, subject, settings.max_failed_sign_ins, settings.lockout_minutes * 60
            )
            await audit.record(
                conn,
                actor=f"staff:{subject}",
                action="sign_in.failed",
                entity="person",
                entity_id=subject,
            )
        else:
            await conn.execute(_SUCCEEDED, subject)
            session_id = uuid.uuid4()
            refresh = secrets.token_urlsafe(32)
            auth_time = await conn.fetchval(
                _OPEN_SESSION, session_id, subject, settings.session_hours * 3600, _digest(refresh)
            )
            grants = await _grants(conn, subject)
            await audit.record(
                conn,
                actor=f"staff:{subject}",
                action="sign_in.succeeded",
                entity="session",
                entity_id=str(session_id),
            )
    if not ok:
        raise refused
    access = _access_token(
        settings, key, subject, row["display_name"], grants, session_id, auth_time
    )
    return Tokens(access, refresh, settings.access_token_seconds)


async def refresh(
    pool: asyncpg.Pool, settings: IdentitySettings, key: SigningKey, refresh_token: str
) -> Tokens:
    """New tokens for an open session (the refresh token rotates); `auth_time` stays that
    of the sign-in, so a signature still asks for the password again."""
    new_refresh = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        session = await conn.fetchrow(_REFRESH, _digest(refresh_token), _digest(new_refresh))
        if session is None:
            raise Refused(
                Kind.UNAUTHORIZED, "invalid_grant", "The session ended or the token is not valid."
            )
        person = await conn.fetchrow(_PERSON, session["subject"])
        assert person is not None
        if person["revoked_at"] is not None:
            raise Refused(Kind.UNAUTHORIZED, "invalid_grant", "This person's access was revoked.")
        grants = await _grants(conn, session["subject"])
    access = _access_token(
        settings,
        key,
        session["subject"],
        person["display_name"],
        grants,
        session["session_id"],
        session["auth_time"],
    )
    return Tokens(access, new_refresh, settings.access_token_seconds)


async def log_out(pool: asyncpg.Pool, principal: Principal) -> None:
    """End the caller's session: its refresh token stops, and its access tokens stop on
    every service once they read the staff-access topic."""
    if principal.session_id is None:
        raise Refused(Kind.CONFLICT, "no_session", "This token belongs to no session.")
    async with pool.acquire() as conn, conn.transaction():
        ended = await conn.fetchrow(_END_SESSION, uuid.UUID(principal.session_id))
        if ended is None:
            return  # already ended: logging out twice is fine
        event = StaffSessionEnded(
            subject=principal.subject, session_id=principal.session_id, ended_at=ended["ended_at"]
        )
        await outbox.enqueue(conn, Topic.STAFF_ACCESS, [(f"session:{principal.session_id}", event)])
        await audit.record(
            conn,
            actor=principal.actor,
            action="session.ended",
            entity="session",
            entity_id=principal.session_id,
        )


async def people(pool: asyncpg.Pool, by: Principal) -> list[dict[str, object]]:
    """The people whose grants the caller may manage (all, for a platform admin)."""
    out = []
    for row in await pool.fetch(_PEOPLE):
        grants = [Grant.parse(g) for g in json.loads(row["grants"])] if row["grants"] else []
        try:
            check_may_grant(by, grants)
        except Refused:
            continue
        out.append(
            {
                "subject": row["subject"],
                "name": row["display_name"],
                "revoked": row["revoked"],
                "grants": [g.claim() for g in grants],
            }
        )
    return out


def acting_anywhere(principal: Principal) -> dict[str, str]:
    return {
        "name": principal.name,
        "role": ",".join(sorted({str(g.role) for g in principal.grants})),
    }


def _access_token(
    settings: IdentitySettings,
    key: SigningKey,
    subject: str,
    name: str,
    grants: Sequence[Grant],
    session_id: uuid.UUID,
    auth_time: datetime,
) -> str:
    return key.issue(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        subject=subject,
        name=name,
        grants=grants,
        ttl_seconds=settings.access_token_seconds,
        session_id=str(session_id),
        auth_time=auth_time.timestamp(),
    )


async def _person_for_update(conn: DbConnection, subject: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(_PERSON + " FOR UPDATE", subject)
    if row is None:
        raise Refused(Kind.NOT_FOUND, "unknown_person", f"No person '{subject}'.")
    return row


async def _grants(conn: DbConnection, subject: str) -> list[Grant]:
    return [
        Grant(Role(r["role"]), r["study_id"], r["site_id"])
        for r in await conn.fetch(_GRANTS, subject)
    ]


async def _write_grants(conn: DbConnection, subject: str, grants: Sequence[Grant]) -> None:
    await conn.execute(
        _INSERT_GRANTS,
        subject,
        [str(g.role) for g in grants],
        [g.study_id for g in grants],
        [g.site_id for g in grants],
    )


async def _announce_revocation(conn: DbConnection, subject: str, at: datetime) -> None:
    event = StaffAccessRevoked(subject=subject, not_before=at)
    await outbox.enqueue(conn, Topic.STAFF_ACCESS, [(f"subject:{subject}", event)])

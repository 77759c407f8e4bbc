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
from datetime import UTC, datetime

import asyncpg
from trialstream import audit, outbox
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.identity import StaffAccessRevoked, StaffSessionEnded
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Principal, Role, SigningKey

from identity import repository as sql
from identity.domain import Person, Tokens, audited_anywhere, check_may_grant
from identity.passwords import hash_password, hash_password_async, password_matches_async
from identity.settings import IdentitySettings

# Compared against when the sign-in name is unknown, so the answer takes as long either way.
_NOBODY = hash_password(secrets.token_urlsafe(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def signing_key(pool: asyncpg.Pool) -> SigningKey:
    """The newest signing key; the first replica to start creates it (replicas agree)."""
    async with pool.acquire() as conn:
        pem = await conn.fetchval(sql.KEY)
        if pem is None:
            fresh = SigningKey.generate()
            await conn.execute(sql.ADD_KEY, fresh.kid, fresh.pem().decode("ascii"))
            pem = await conn.fetchval(sql.KEY)
    return SigningKey.from_pem(str(pem).encode("ascii"))


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
        if await conn.fetchval(sql.INSERT_PERSON, subject, name, hashed) is None:
            raise Refused(Kind.CONFLICT, "person_exists", f"'{subject}' already exists.")
        await _write_grants(conn, subject, grants)
        await audit.record(
            conn,
            **audited_anywhere(by),
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
        await conn.execute(sql.DELETE_GRANTS, subject)
        await _write_grants(conn, subject, grants)
        await _announce_revocation(conn, subject, datetime.now(UTC))
        await audit.record(
            conn,
            **audited_anywhere(by),
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
        revoked_at = await conn.fetchval(sql.REVOKE, subject)
        if revoked_at is None:
            raise Refused(Kind.CONFLICT, "already_revoked", f"'{subject}' is already revoked.")
        await conn.fetch(sql.END_ALL, subject)
        await _announce_revocation(conn, subject, revoked_at)
        await audit.record(
            conn,
            **audited_anywhere(by),
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
    row = await pool.fetchrow(sql.PERSON, subject)
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
                sql.FAILED, subject, settings.max_failed_sign_ins, settings.lockout_minutes * 60
            )
            await audit.record(
                conn,
                actor=f"staff:{subject}",
                action="sign_in.failed",
                entity="person",
                entity_id=subject,
            )
        else:
            await conn.execute(sql.SUCCEEDED, subject)
            session_id = uuid.uuid4()
            refresh = secrets.token_urlsafe(32)
            auth_time = await conn.fetchval(
                sql.OPEN_SESSION,
                session_id,
                subject,
                settings.session_hours * 3600,
                _digest(refresh),
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
        session = await conn.fetchrow(sql.REFRESH, _digest(refresh_token), _digest(new_refresh))
        if session is None:
            raise Refused(
                Kind.UNAUTHORIZED, "invalid_grant", "The session ended or the token is not valid."
            )
        person = await conn.fetchrow(sql.PERSON, session["subject"])
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
        ended = await conn.fetchrow(sql.END_SESSION, uuid.UUID(principal.session_id))
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
    for row in await pool.fetch(sql.PEOPLE):
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
    row: asyncpg.Record | None = await conn.fetchrow(sql.PERSON + " FOR UPDATE", subject)
    if row is None:
        raise Refused(Kind.NOT_FOUND, "unknown_person", f"No person '{subject}'.")
    return row


async def _grants(conn: DbConnection, subject: str) -> list[Grant]:
    return [
        Grant(Role(r["role"]), r["study_id"], r["site_id"])
        for r in await conn.fetch(sql.GRANTS, subject)
    ]


async def _write_grants(conn: DbConnection, subject: str, grants: Sequence[Grant]) -> None:
    await conn.execute(
        sql.INSERT_GRANTS,
        subject,
        [str(g.role) for g in grants],
        [g.study_id for g in grants],
        [g.site_id for g in grants],
    )


async def _announce_revocation(conn: DbConnection, subject: str, at: datetime) -> None:
    event = StaffAccessRevoked(subject=subject, not_before=at)
    await outbox.enqueue(conn, Topic.STAFF_ACCESS, [(f"subject:{subject}", event)])

"""Study definitions: apply (idempotent, versioned, audited, announced), read, history.

A platform admin creates a study; its study admins change it afterwards. Applying the same
definition again changes nothing (same digest: no new version, no event). Every new version
is kept (`study_versions`), audited with the person and the old and new digests, and sent
to the `studies` topic in the same transaction (outbox).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from trialstream import audit, outbox
from trialstream.errors import Kind, Refused
from trialstream.events.studies import StudyDefined
from trialstream.events.topics import Topic
from trialstream.identity import Principal, Role
from trialstream.studies import StudyDefinition

from identity import repository as sql
from identity.domain import audited_anywhere


@dataclass(frozen=True)
class Applied:
    study_id: str
    version: int
    digest: str
    changed: bool


def may_read(by: Principal, study_id: str) -> bool:
    return by.is_platform_admin or bool(by.roles(study_id))


def check_may_change(by: Principal, study_id: str, exists: bool) -> None:
    if by.is_platform_admin:
        return
    if not exists:
        raise Refused(Kind.FORBIDDEN, "role_not_allowed", "Only a platform admin creates a study.")
    if Role.STUDY_ADMIN not in by.roles(study_id):
        raise Refused(
            Kind.FORBIDDEN, "role_not_allowed", f"Only a study admin of '{study_id}' changes it."
        )


async def apply(pool: asyncpg.Pool, by: Principal, definition: StudyDefinition) -> Applied:
    study_id, digest = definition.study_id, definition.digest()
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(sql.STUDY_FOR_UPDATE, study_id)
        check_may_change(by, study_id, current is not None)
        if current is not None and current["digest"] == digest:
            return Applied(study_id, current["version"], digest, changed=False)
        version = 1 if current is None else current["version"] + 1
        canonical = definition.canonical()
        await conn.execute(sql.UPSERT_STUDY, study_id, version, digest, canonical)
        await conn.execute(sql.INSERT_STUDY_VERSION, study_id, version, digest, canonical, by.actor)
        event = StudyDefined(version=version, digest=digest, definition=definition)
        await outbox.enqueue(conn, Topic.STUDIES, [(study_id, event)])
        await audit.record(
            conn,
            **audited_anywhere(by),
            action="study.defined",
            entity="study",
            entity_id=study_id,
            old=None
            if current is None
            else {"version": current["version"], "digest": current["digest"]},
            new={
                "version": version,
                "digest": digest,
                "modules": sorted(map(str, definition.modules)),
            },
        )
    return Applied(study_id, version, digest, changed=True)


def _shown(row: asyncpg.Record) -> dict[str, Any]:
    updated: datetime = row["updated_at"]
    return {
        "study_id": row["study_id"],
        "version": row["version"],
        "digest": row["digest"],
        "updated_at": updated,
        "definition": json.loads(row["definition"]),
    }


async def get(pool: asyncpg.Pool, by: Principal, study_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(sql.STUDY, study_id)
    if row is None or not may_read(by, study_id):
        raise Refused(Kind.NOT_FOUND, "unknown_study", f"No study '{study_id}' of yours.")
    return _shown(row)


async def listed(pool: asyncpg.Pool, by: Principal) -> list[dict[str, Any]]:
    return [_shown(r) for r in await pool.fetch(sql.STUDIES) if may_read(by, r["study_id"])]


async def versions(pool: asyncpg.Pool, by: Principal, study_id: str) -> list[dict[str, Any]]:
    await get(pool, by, study_id)
    return [dict(r) for r in await pool.fetch(sql.STUDY_VERSIONS, study_id)]

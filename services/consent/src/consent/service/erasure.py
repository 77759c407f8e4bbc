"""Erasure requests (GDPR Article 17; issue 18, decision 0086): recorded here with their
legal basis, announced on the compacted erasures topic, and followed by every service
that holds personal data; this service shows per service what is finished.

A request implies a full withdrawal of consent (nothing more is collected). Whether data
collected under consent is kept, pseudonymous, is the study's rule at the time of the
request (`erasure.keep_collected_data` in the study file; kept when absent)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from trialstream import audit
from trialstream.db import DbConnection
from trialstream.events.erasures import ErasureDone, ErasureRequested, LegalBasis, RequestedBy
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue
from trialstream.services import discover_services
from trialstream.studies import ErasureRules, StudyRegistry

from consent import repository
from consent.domain import scopes
from consent.service.announce import announce


def erasing_services() -> list[str]:
    """The services that follow the erasures topic: the ones a request waits for."""
    return sorted(
        s.name for s in discover_services() if any(Topic.ERASURES in g.topics for g in s.groups)
    )


async def request(
    pool: asyncpg.Pool,
    studies: StudyRegistry,
    participant: Any,
    legal_basis: LegalBasis,
    requested_by: RequestedBy,
    actor: dict[str, Any],
) -> dict[str, Any]:
    """Record and announce an erasure request (`actor`: how the audit names who asked)."""
    participant_id, study_id = participant["participant_id"], participant["study_id"]
    rules = studies.get(study_id)
    keep = (rules.erasure_rules() if rules else ErasureRules()).keep_collected_data
    event = ErasureRequested(
        participant_id=participant_id,
        study_id=study_id,
        request_id=uuid.uuid4(),
        legal_basis=legal_basis,
        requested_by=requested_by,
        keep_collected_data=keep,
    )
    async with pool.acquire() as conn, conn.transaction():
        await repository.participant(conn, participant_id, lock=True)
        before = await repository.state(conn, participant_id)
        if before is not None and before.withdrawn_at is None:
            await announce(conn, scopes.withdrawn(before, None, datetime.now(UTC)))
        requested_at = await repository.save_erasure_request(conn, event, actor["actor"])
        await enqueue(conn, Topic.ERASURES, [(participant_id, event)])
        await audit.record(
            conn,
            **actor,
            action="erasure.requested",
            entity="participant",
            entity_id=participant_id,
            new={
                "request_id": str(event.request_id),
                "legal_basis": str(legal_basis),
                "requested_by": requested_by,
                "keep_collected_data": keep,
            },
        )
    return {**_request_view(event, requested_at), "services": _pending(erasing_services())}


def _request_view(event: ErasureRequested, requested_at: datetime) -> dict[str, Any]:
    return {
        "participant_id": event.participant_id,
        "request_id": str(event.request_id),
        "legal_basis": str(event.legal_basis),
        "requested_by": event.requested_by,
        "keep_collected_data": event.keep_collected_data,
        "requested_at": requested_at.isoformat(),
    }


def _pending(services: Sequence[str]) -> dict[str, Any]:
    return {name: {"done": False} for name in services}


async def status(pool: asyncpg.Pool, participant_id: str) -> dict[str, Any] | None:
    """The request and, per service that follows erasures, whether it has finished."""
    found = await repository.erasure_request(pool, participant_id)
    if found is None:
        return None
    progress = {
        r["service"]: r
        for r in await repository.erasure_progress(pool, participant_id)
        if r["request_id"] == found["request_id"]
    }
    services: dict[str, Any] = _pending(erasing_services())
    for name, row in progress.items():
        services[name] = {
            "done": True,
            "done_at": row["done_at"].isoformat(),
            "erased": dict(_json(row["erased"])),
        }
    return {
        "participant_id": participant_id,
        "request_id": str(found["request_id"]),
        "legal_basis": found["legal_basis"],
        "requested_by": found["requested_by"],
        "actor": found["actor"],
        "keep_collected_data": found["keep_collected_data"],
        "requested_at": found["requested_at"].isoformat(),
        "complete": all(s["done"] for s in services.values()),
        "services": services,
    }


def _json(value: Any) -> dict[str, int]:
    return json.loads(value) if isinstance(value, str) else dict(value)


async def progress(pool: asyncpg.Pool, events: Sequence[ErasureDone]) -> None:
    """Keep what the erasure-status topic reports (the newest per participant and service)."""
    newest: dict[tuple[str, str], ErasureDone] = {}
    for e in events:
        key = (e.participant_id, e.service)
        if key not in newest or newest[key].occurred_at <= e.occurred_at:
            newest[key] = e
    if newest:
        await repository.save_progress(pool, list(newest.values()))


async def erase(conn: DbConnection, request: ErasureRequested) -> dict[str, int]:
    """This service's own part: the app credential and re-authentication proofs, and the
    names of witnesses and representatives. Signatures, their times, versions and hashes
    and the consent states stay: they are the record that consent was given (ICH E6
    essential documents), pseudonymous."""
    return await repository.erase_own(conn, request.participant_id)

"""The participant's side before signing: the app credential staff issue (decision
0079), a fresh re-authentication proof, comprehension attempts; and enrolments and
withdrawals as the participants topic announces them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from trialstream import audit
from trialstream.auth import hash_token, new_token
from trialstream.errors import Kind, Refused
from trialstream.events.participants import ParticipantState
from trialstream.identity import Principal
from trialstream.staff import audited_as

from consent import repository
from consent.domain import scopes
from consent.domain.documents import DocumentBody, grade
from consent.service.announce import announce


async def issue_credential(pool: asyncpg.Pool, by: Principal, participant: Any) -> str:
    token = new_token("cns")
    async with pool.acquire() as conn, conn.transaction():
        await repository.insert_credential(conn, hash_token(token), participant["participant_id"])
        await audit.record(
            conn,
            **audited_as(by, participant["study_id"]),
            action="consent_credential.issued",
            entity="consent_credential",
            entity_id=participant["participant_id"],
            new={"status": "active"},
        )
    return token


async def participant_for(pool: asyncpg.Pool, token: str) -> str:
    found = await repository.participant_for_token(pool, hash_token(token))
    if found is None:
        raise Refused(
            Kind.UNAUTHORIZED, "invalid_credentials", "Unknown or revoked consent credential."
        )
    return found


async def reauthenticate(
    pool: asyncpg.Pool, participant_id: str, seconds: int
) -> tuple[str, datetime]:
    """A single-use proof, valid `seconds`, that the credential was presented again just
    now (the app asks for the phone's unlock or biometrics before it calls this)."""
    proof = new_token("reauth")
    expires = datetime.now(UTC) + timedelta(seconds=seconds)
    await repository.insert_proof(pool, hash_token(proof), participant_id, expires)
    return proof, expires


async def comprehension(
    pool: asyncpg.Pool, participant_id: str, version: int, language: str, answers: dict[str, int]
) -> dict[str, Any]:
    who = await repository.participant(pool, participant_id)
    assert who is not None  # the credential names an enrolled participant
    body = await document_for(pool, who, version, language)
    wrong, review = grade(body, answers)
    async with pool.acquire() as conn, conn.transaction():
        await repository.insert_attempt(
            conn, uuid.uuid4(), participant_id, who["study_id"], version, language, answers, wrong
        )
        count, _ = await repository.attempts(conn, participant_id, version, language)
        await audit.record(
            conn,
            actor=f"participant:{participant_id}",
            action="consent_comprehension.attempted",
            entity="consent_comprehension",
            entity_id=f"{participant_id}/{version}/{language}",
            new={"attempt": count, "wrong": wrong, "passed": not wrong},
        )
    return {"passed": not wrong, "attempts": count, "wrong": wrong, "review_sections": review}


async def document_for(pool: Any, who: Any, version: int, language: str) -> DocumentBody:
    for site in (who["site_id"], "*"):
        found = await repository.document(pool, who["study_id"], version, site, language)
        if found is not None:
            return found[0]
    raise Refused(
        Kind.NOT_FOUND, "unknown_document", f"no consent document version {version} in {language}"
    )


async def participants_changed(pool: asyncpg.Pool, events: Sequence[ParticipantState]) -> None:
    """Keep who is enrolled where; a withdrawal made elsewhere (ingest's admin route) ends
    every scope of the participant's consent too (announced, so the gates agree)."""
    async with pool.acquire() as conn, conn.transaction():
        await repository.upsert_participants(conn, events)
        for event in events:
            at = event.withdrawal_time()
            if at is None:
                continue
            before = await repository.state(conn, event.participant_id)
            if before is None or before.withdrawn_at is not None:
                continue
            after = scopes.withdrawn(before, None, at)
            await announce(conn, after)
            await audit.record(
                conn,
                actor="system:consent",
                action="consent.withdrawn",
                entity="consent",
                entity_id=event.participant_id,
                old={"scopes": [str(s) for s in scopes.in_force(before)]},
                new={"scopes": [], "withdrawn_at": at.isoformat(), "by": "participants topic"},
            )

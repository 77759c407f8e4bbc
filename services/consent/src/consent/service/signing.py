"""Signatures and withdrawals (decisions 0079, 0080).

- `sign`: the participant's credential plus a fresh, single-use re-authentication proof;
  the document version they read must be the current one and its SHA-256 the one they
  were shown; comprehension passed if the document asks questions. Recorded with the
  server's clock and the fixed meaning of the signature; the consent takes effect then
  for the scopes chosen (announced on the consents topic).
- `countersign`: an investigator of the site, signed in within the step-up window.
- `withdraw`: some scopes (partial) or all (full). A full withdrawal is announced with
  `withdrawn_at`; ingest turns it into the participant's withdrawal on the participants
  topic, which every service already acts on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from trialstream import audit
from trialstream.auth import hash_token
from trialstream.errors import Kind, Refused, about_field
from trialstream.events.consents import ConsentScope
from trialstream.identity import Action, Principal
from trialstream.staff import audited_as

from consent import repository
from consent.domain import scopes
from consent.domain.copy import signed_copy
from consent.domain.records import (
    COUNTERSIGN_MEANING,
    PARTICIPANT_MEANING,
    REPRESENTATIVE_MEANING,
    Signature,
)
from consent.service.announce import announce
from consent.service.participants import document_for


class Representative(BaseModel):
    """A witness (e.g. for a participant who cannot read) or a legally authorised
    representative, signing with the participant. Their name stays in this service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["witness", "legally_authorised_representative"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    relationship: Annotated[str, StringConstraints(max_length=100)] | None = None


class NewSignature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    document_version: int = Field(ge=1)
    language: Annotated[str, StringConstraints(min_length=2, max_length=35)]
    document_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    scopes: list[ConsentScope] = Field(min_length=1)
    reauth_proof: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    representative: Representative | None = None


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scopes: list[ConsentScope] | None = Field(
        default=None, min_length=1, description="The scopes to withdraw; omitted: all of them"
    )
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


def _not_found(signature_id: uuid.UUID) -> Refused:
    return Refused(Kind.NOT_FOUND, "unknown_signature", f"no signature {signature_id} here")


async def _check_document(conn: Any, who: Any, body: NewSignature) -> None:
    rows = await repository.current_documents(conn, who["study_id"], who["site_id"])
    if not rows or rows[0]["version"] != body.document_version:
        current = rows[0]["version"] if rows else None
        raise about_field(
            Kind.CONFLICT,
            "not_current_version",
            f"version {body.document_version} is not the current consent document ({current})",
            "document_version",
            f"the current version is {current}",
        )
    doc = await document_for(conn, who, body.document_version, body.language)
    if doc.sha256() != body.document_sha256:
        raise about_field(
            Kind.CONFLICT,
            "document_changed",
            "the document's SHA-256 is not the one published for this version and language",
            "document_sha256",
            "does not match",
        )
    offered = set(doc.scopes)
    extra = sorted(str(s) for s in set(body.scopes) - offered)
    if extra:
        raise about_field(
            Kind.INVALID,
            "scope_not_offered",
            f"the document does not ask for: {', '.join(extra)}",
            "scopes",
            f"one of {sorted(str(s) for s in offered)}",
        )
    if doc.questions:
        count, passed = await repository.attempts(
            conn, who["participant_id"], body.document_version, body.language
        )
        if not passed:
            raise Refused(
                Kind.CONFLICT,
                "comprehension_required",
                "answer the comprehension questions correctly before signing"
                f" ({count} attempt(s) so far)",
            )


async def sign(pool: asyncpg.Pool, participant_id: str, body: NewSignature) -> Signature:
    async with pool.acquire() as conn, conn.transaction():
        who = await repository.participant(conn, participant_id, lock=True)
        assert who is not None
        if who["withdrawn_at"] is not None:
            raise Refused(Kind.CONFLICT, "participant_withdrawn", "you have left the study")
        if not await repository.use_proof(conn, hash_token(body.reauth_proof), participant_id):
            raise about_field(
                Kind.UNAUTHORIZED,
                "reauth_required",
                "signing needs a fresh re-authentication: POST /v1/consent/reauth, then sign",
                "reauth_proof",
                "unknown, used or expired",
            )
        await _check_document(conn, who, body)
        now = datetime.now(UTC)  # the server's clock, never the app's
        rep = body.representative
        # a representative signs instead of the participant (their meaning is the
        # signature's); a witness signs beside them (their own meaning, on their record)
        on_behalf = rep is not None and rep.role == "legally_authorised_representative"
        meaning = REPRESENTATIVE_MEANING[rep.role] if rep and on_behalf else PARTICIPANT_MEANING
        signature = Signature(
            signature_id=uuid.uuid4(),
            participant_id=participant_id,
            study_id=who["study_id"],
            site_id=who["site_id"],
            version=body.document_version,
            language=body.language,
            document_sha256=body.document_sha256,
            scopes=tuple(str(s) for s in body.scopes),
            meaning=meaning,
            signed_at=now,
            representative=None
            if rep is None
            else {**rep.model_dump(), "meaning": REPRESENTATIVE_MEANING[rep.role]},
        )
        await repository.insert_signature(conn, signature)
        before = await repository.state(conn, participant_id)
        after = scopes.signed(
            before,
            participant_id=participant_id,
            study_id=who["study_id"],
            site_id=who["site_id"],
            scopes=body.scopes,
            at=now,
            version=body.document_version,
            sha256=body.document_sha256,
            language=body.language,
        )
        await announce(conn, after)
        await audit.record(
            conn,
            actor=f"participant:{participant_id}",
            action="consent.signed",
            entity="consent_signature",
            entity_id=str(signature.signature_id),
            old={"scopes": [str(s) for s in scopes.in_force(before)]},
            new={
                "document_version": signature.version,
                "language": signature.language,
                "document_sha256": signature.document_sha256,
                "scopes": list(signature.scopes),
                "meaning": meaning,
                "signed_at": now.isoformat(),
                "representative_role": None if rep is None else rep.role,
            },
        )
    return signature


async def countersign(pool: asyncpg.Pool, by: Principal, signature_id: uuid.UUID) -> Signature:
    async with pool.acquire() as conn, conn.transaction():
        found = await repository.signature(conn, signature_id, lock=True)
        if found is None or not by.allows(Action.SIGN, found.study_id, found.site_id):
            raise _not_found(signature_id)
        if found.countersigned_at is not None:
            raise Refused(Kind.CONFLICT, "already_countersigned", "this consent is countersigned")
        now = datetime.now(UTC)
        await repository.countersign(
            conn, signature_id, by.actor, by.name, COUNTERSIGN_MEANING, now
        )
        state = await repository.state(conn, found.participant_id)
        latest = await repository.signatures_of(conn, found.participant_id)
        if state is not None and latest and latest[-1].signature_id == signature_id:
            await announce(conn, scopes.countersigned(state, now))
        await audit.record(
            conn,
            **audited_as(by, found.study_id),
            action="consent.countersigned",
            entity="consent_signature",
            entity_id=str(signature_id),
            old={"countersigned": False},
            new={"countersigned": True, "meaning": COUNTERSIGN_MEANING, "at": now.isoformat()},
        )
        done = await repository.signature(conn, signature_id)
    assert done is not None
    return done


async def withdraw(
    pool: asyncpg.Pool, participant_id: str, body: Withdrawal, actor: dict[str, Any]
) -> dict[str, Any]:
    """`actor`: how the audit entry names who recorded it (the participant or staff)."""
    async with pool.acquire() as conn, conn.transaction():
        await repository.participant(conn, participant_id, lock=True)
        before = await repository.state(conn, participant_id)
        if before is None:
            raise Refused(Kind.CONFLICT, "no_consent", "there is no consent to withdraw")
        if before.withdrawn_at is not None:
            return {"scopes": [], "withdrawn_at": before.withdrawn_at.isoformat()}
        held = set(scopes.in_force(before))
        if body.scopes is not None and not set(body.scopes) & held:
            raise about_field(
                Kind.CONFLICT,
                "scope_not_consented",
                "none of these scopes is in force",
                "scopes",
                f"in force: {sorted(str(s) for s in held)}",
            )
        after = scopes.withdrawn(before, body.scopes, datetime.now(UTC))
        await announce(conn, after)
        await audit.record(
            conn,
            **actor,
            action="consent.withdrawn" if after.withdrawn_at else "consent.scope_withdrawn",
            entity="consent",
            entity_id=participant_id,
            old={"scopes": sorted(str(s) for s in held)},
            new={"scopes": [str(s) for s in scopes.in_force(after)]},
            erasable_reason=body.reason,  # free text: off the chain (decision 0087)
            subject=participant_id,
        )
    return {
        "scopes": [str(s) for s in scopes.in_force(after)],
        "withdrawn_at": None if after.withdrawn_at is None else after.withdrawn_at.isoformat(),
    }


async def copy_of(pool: asyncpg.Pool, participant_id: str, signature_id: uuid.UUID) -> str:
    found = await repository.signature(pool, signature_id)
    if found is None or found.participant_id != participant_id:
        raise _not_found(signature_id)
    who = await repository.participant(pool, participant_id)
    doc = await document_for(pool, who, found.version, found.language)
    return signed_copy(doc, found, found.study_id)

"""The participant app's routes: read the document, answer the questions, re-authenticate,
sign, download the signed copy, withdraw (some scopes or all)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from trialstream.runtime import CurrentRuntime

from consent.api.common import Participant, Settings
from consent.domain.copy import CONTENT_SECURITY_POLICY
from consent.domain.documents import DocumentBody
from consent.service import documents, participants, reports, signing

router = APIRouter(tags=["participant app"])


class Answers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_version: int = Field(ge=1)
    language: str = Field(min_length=2, max_length=35)
    answers: dict[str, int] = Field(max_length=50)


@router.get("/v1/consent/document", summary="The current consent document, in a language")
async def current_document(
    runtime: CurrentRuntime,
    who: Participant,
    language: str | None = Query(default=None, max_length=35),
) -> dict[str, Any]:
    row, languages = await documents.current_for(runtime.pool, who, language)
    shown = DocumentBody.model_validate_json(row["body"]).shown()
    return {
        "document_version": row["version"],
        "language": row["language"],
        "languages": languages,
        "sha256": row["sha256"],
        **shown,
    }


@router.post("/v1/consent/comprehension", summary="Answer the comprehension questions")
async def answer(runtime: CurrentRuntime, who: Participant, body: Answers) -> dict[str, Any]:
    return await participants.comprehension(
        runtime.pool, who, body.document_version, body.language, body.answers
    )


@router.post("/v1/consent/reauth", summary="Re-authenticate just before signing")
async def reauth(runtime: CurrentRuntime, settings: Settings, who: Participant) -> dict[str, Any]:
    proof, expires = await participants.reauthenticate(runtime.pool, who, settings.reauth_seconds)
    return {"reauth_proof": proof, "expires_at": expires.isoformat(), "single_use": True}


@router.post("/v1/consent/signatures", status_code=201, summary="Sign the consent document")
async def sign(
    runtime: CurrentRuntime, who: Participant, body: signing.NewSignature
) -> dict[str, Any]:
    signature = await signing.sign(runtime.pool, who, body)
    out = signature.as_dict()
    out["copy"] = f"/v1/consent/signatures/{signature.signature_id}/copy"
    return out


@router.get(
    "/v1/consent/signatures/{signature_id}/copy",
    response_class=HTMLResponse,
    summary="The signed copy (HTML with the document's SHA-256)",
)
async def signed_copy(
    runtime: CurrentRuntime, who: Participant, signature_id: UUID
) -> HTMLResponse:
    page = await signing.copy_of(runtime.pool, who, signature_id)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Content-Disposition": f'attachment; filename="consent-{signature_id}-{stamp}.html"',
        },
    )


@router.get("/v1/consent/me", summary="My consent: scopes in force and signatures")
async def mine(runtime: CurrentRuntime, who: Participant) -> dict[str, Any]:
    return await reports.consent_of(runtime.pool, who)


@router.post("/v1/consent/withdrawals", summary="Withdraw some scopes, or all")
async def withdraw(
    runtime: CurrentRuntime, who: Participant, body: signing.Withdrawal
) -> dict[str, Any]:
    return await signing.withdraw(runtime.pool, who, body, {"actor": f"participant:{who}"})

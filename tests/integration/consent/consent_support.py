"""The consent service and ingest on the real broker and PostgreSQL, for a study that
enables the consent module: enrolment, a device, the participant's consent credential,
documents to publish, the signing steps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from consent.main import create_app as consent_app
from consent.settings import ConsentSettings
from helpers import announce_study, eventually, reading, serving, unique_id
from ingest.main import create_app as ingest_app
from ingest.settings import IngestSettings
from staff_tokens import JWKS, staff_auth
from trialstream.identity import Role

ADMIN = "consent-admin"
SITE = "site-a"
STUDY_ADMIN = {"role": Role.STUDY_ADMIN}
MODULES = ["ingest", "consent", "epro", "telehealth"]


def document(version: int = 1, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": version,
        "language": "en",
        "format": "markdown",
        "title": f"Consent to the study, version {version}",
        "sections": [
            {"id": "purpose", "title": "Purpose", "body": "Why we do this study."},
            {"id": "data", "title": "Your data", "body": "You can stop at any time."},
        ],
        "scopes": ["wearable", "epro", "telehealth"],
        "questions": [
            {
                "id": "stop",
                "section": "data",
                "text": "Can you stop taking part?",
                "options": ["No", "Yes, at any time"],
                "answer": 1,
            }
        ],
    }
    doc.update(changes)
    return doc


@dataclass(frozen=True)
class Enrolled:
    participant: str
    device: str
    device_token: str
    app: dict[str, str]  # the consent app credential's Authorization header


@dataclass
class Platform:
    consent: httpx.AsyncClient
    ingest: httpx.AsyncClient
    kafka: str
    study: str

    def staff(self, role: Role = Role.SITE_STAFF, **kwargs: Any) -> dict[str, str]:
        return staff_auth(SITE, role, study=self.study, **kwargs)

    async def enrol(self) -> Enrolled:
        """A participant enrolled in ingest with a device (its token), and their consent
        app credential once the consent service has read the enrolment."""
        participant, device = unique_id("P"), unique_id("dev")
        body = {"participant_id": participant, "site_id": SITE, "study_id": self.study}
        r = await self.ingest.post("/v1/admin/participants", json=body, headers=self.staff())
        assert r.status_code == 201, r.text
        r = await self.ingest.post(
            "/v1/admin/devices",
            json={"device_id": device, "participant_id": participant},
            headers=self.staff(),
        )
        assert r.status_code == 201, r.text
        device_auth = r.json()["token"]

        async def credential() -> str | None:
            r = await self.consent.post(
                f"/v1/participants/{participant}/consent-credential", headers=self.staff()
            )
            return str(r.json()["token"]) if r.status_code == 201 else None

        token = await eventually(credential)
        return Enrolled(participant, device, device_auth, {"Authorization": f"Bearer {token}"})

    async def upload(self, who: Enrolled, *measured: datetime) -> dict[str, Any]:
        r = await self.ingest.post(
            "/v1/readings",
            json={
                "readings": [reading(who.participant, who.device, measured_at=m) for m in measured]
            },
            headers={"Authorization": f"Bearer {who.device_token}"},
        )
        out: dict[str, Any] = {"status": r.status_code, **r.json()}
        return out

    async def publish(self, version: int = 1, **changes: Any) -> httpx.Response:
        body = {"study_id": self.study, **document(version, **changes)}
        return await self.consent.post(
            "/v1/consent/documents", json=body, headers=self.staff(Role.STUDY_ADMIN)
        )

    async def sign(self, app: dict[str, str], scopes: list[str], **extra: Any) -> httpx.Response:
        shown = (await self.consent.get("/v1/consent/document?language=en", headers=app)).json()
        if shown["questions"]:
            answers = {q["id"]: 1 for q in shown["questions"]}
            r = await self.consent.post(
                "/v1/consent/comprehension",
                json={
                    "document_version": shown["document_version"],
                    "language": "en",
                    "answers": answers,
                },
                headers=app,
            )
            assert r.json()["passed"], r.text
        proof = (await self.consent.post("/v1/consent/reauth", headers=app)).json()["reauth_proof"]
        body = {
            "document_version": shown["document_version"],
            "language": "en",
            "document_sha256": shown["sha256"],
            "scopes": scopes,
            "reauth_proof": proof,
            **extra,
        }
        return await self.consent.post("/v1/consent/signatures", json=body, headers=app)


@asynccontextmanager
async def platform(kafka: str, database_url: str, **declared: Any) -> AsyncIterator[Platform]:
    """`declared`: more of the study file (e.g. `consent={...}`)."""
    study = unique_id("CONSENT")
    await announce_study(kafka, study, MODULES, [SITE], **declared)
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database_url,
        "admin_token": ADMIN,
        "oidc_jwks": JWKS,
        "kafka_session_timeout_ms": 2000,
        "rate_limit_per_second": 0,
    }
    async with (
        serving(consent_app(ConsentSettings(**common))) as consent,
        serving(ingest_app(IngestSettings(**common))) as ingest,
    ):
        p = Platform(consent, ingest, kafka, study)

        async def studies_read() -> bool:
            r = await ingest.get("/readyz")
            c = await consent.get("/readyz")
            return r.status_code == 200 and c.status_code == 200

        await eventually(studies_read, timeout=30)
        yield p

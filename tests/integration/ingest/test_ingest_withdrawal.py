"""Withdrawing a participant: the state is published, later readings are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from helpers import read_topic, reading, serving, unique_id
from ingest.main import create_app
from ingest.settings import IngestSettings
from staff_tokens import JWKS, staff_auth
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ADMIN = "test-admin-token"
AUTH = staff_auth(None, "platform_admin")


@pytest.fixture
async def ingest(kafka: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
    )
    async with serving(create_app(settings)) as client:
        yield client


async def enrol(client: httpx.AsyncClient) -> tuple[str, str, str]:
    participant, device = unique_id("P"), unique_id("dev")
    r = await client.post(
        "/v1/admin/participants",
        json={"participant_id": participant, "site_id": "site-w", "timezone": "Europe/Berlin"},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/admin/devices", json={"device_id": device, "participant_id": participant}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    return participant, device, r.json()["token"]


async def test_withdrawal_is_published_and_later_readings_are_refused(
    ingest: httpx.AsyncClient, kafka: str
) -> None:
    participant, device, token = await enrol(ingest)
    withdrawn_at = datetime.now(UTC) - timedelta(minutes=10)
    r = await ingest.post(
        f"/v1/admin/participants/{participant}/withdraw",
        json={"reason": "consent withdrawn by phone", "withdrawn_at": withdrawn_at.isoformat()},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "participant_id": participant,
        "site_id": "site-w",
        "status": "withdrawn",
        "withdrawn_at": withdrawn_at.isoformat(),
    }
    again = await ingest.post(
        f"/v1/admin/participants/{participant}/withdraw", json={"reason": "twice"}, headers=AUTH
    )
    assert again.json()["withdrawn_at"] == withdrawn_at.isoformat()  # the first one stands

    states = await read_topic(
        kafka, Topic.PARTICIPANTS, match=lambda v: v.get("participant_id") == participant
    )
    assert [(s["status"], s["withdrawn_at"]) for s in states] == [
        ("enrolled", None),
        ("withdrawn", withdrawn_at.isoformat().replace("+00:00", "Z")),
    ]
    assert all("reason" not in s for s in states)  # free text stays in ingest

    before = reading(participant, device, measured_at=withdrawn_at - timedelta(minutes=5))
    after = reading(participant, device, measured_at=withdrawn_at + timedelta(minutes=5))
    upload = await ingest.post(
        "/v1/readings",
        json={"readings": [before, after]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert upload.status_code == 200, upload.text
    results = upload.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["errors"][0]["code"] == "participant_withdrawn"


async def test_withdrawal_needs_a_reason_a_known_participant_and_no_future_time(
    ingest: httpx.AsyncClient,
) -> None:
    participant, _, _ = await enrol(ingest)
    url = f"/v1/admin/participants/{participant}/withdraw"
    no_reason = await ingest.post(url, json={}, headers=AUTH)
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["details"][0]["field"] == "reason"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    ahead = await ingest.post(url, json={"reason": "x", "withdrawn_at": future}, headers=AUTH)
    assert (ahead.status_code, ahead.json()["error"]["details"][0]["code"]) == (422, "in_future")
    unknown = await ingest.post(
        f"/v1/admin/participants/{unique_id('P')}/withdraw", json={"reason": "x"}, headers=AUTH
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_participant")
    no_admin = await ingest.post(url, json={"reason": "x"})
    assert no_admin.status_code == 401

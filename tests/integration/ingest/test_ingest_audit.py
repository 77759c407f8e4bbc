"""Ingest's state changes (enrolment, device registration and revocation) are audited."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from audit_helpers import audited, changes
from helpers import unique_id
from staff_tokens import staff_auth
from test_ingest_upload import ADMIN_AUTH, enrol, ingest  # noqa: F401 - the fixture
from trialstream import audit

pytestmark = pytest.mark.integration


async def test_enrolment_registration_and_revocation_are_in_the_audit_chain(
    ingest: httpx.AsyncClient,  # noqa: F811 - the fixture
    database_url: str,
) -> None:
    participant, device, _ = await enrol(ingest, site="site-q")
    r = await ingest.post(f"/v1/admin/devices/{device}/revoke", headers=ADMIN_AUTH)
    assert r.status_code == 200, r.text
    again = await ingest.post(f"/v1/admin/devices/{device}/revoke", headers=ADMIN_AUTH)
    assert again.status_code == 404  # nothing changed, nothing audited

    assert changes(await audited(database_url, "ingest", "participant", participant)) == [
        (
            "staff:ingest-admin",
            "participant.enrolled",
            None,
            {"study_id": "default", "site_id": "site-q", "timezone": "UTC"},
        )
    ]
    assert changes(await audited(database_url, "ingest", "device", device)) == [
        (
            "staff:ingest-admin",
            "device.registered",
            None,
            {"participant_id": participant, "status": "active"},
        ),
        (
            "staff:ingest-admin",
            "device.revoked",
            {"participant_id": participant, "status": "active"},
            {"participant_id": participant, "status": "revoked"},
        ),
    ]


async def test_withdrawal_is_audited_with_its_reason(
    ingest: httpx.AsyncClient,  # noqa: F811 - the fixture
    database_url: str,
) -> None:
    participant, _, _ = await enrol(ingest, site="site-w")
    r = await ingest.post(
        f"/v1/admin/participants/{participant}/withdraw",
        headers=ADMIN_AUTH,
        json={"reason": "consent withdrawn at visit 3"},
    )
    assert r.status_code == 200, r.text
    again = await ingest.post(
        f"/v1/admin/participants/{participant}/withdraw",
        headers=ADMIN_AUTH,
        json={"reason": "a second click"},
    )
    assert again.status_code == 200  # the first withdrawal stands; nothing new to audit

    entries = await audited(database_url, "ingest", "participant", participant)
    assert [e["action"] for e in entries] == ["participant.enrolled", "participant.withdrawn"]
    withdrawal = entries[-1]
    assert withdrawal["old"] == {"status": "enrolled"}
    assert withdrawal["new"]["status"] == "withdrawn"
    # the reason is off the chain (decision 0087): a salted digest there, the text beside it
    assert withdrawal["reason"].startswith("sha256:")
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ingest"})
    try:
        text = await audit.erasable_text(conn, withdrawal["seq"])
    finally:
        await conn.close()
    assert text == "consent withdrawn at visit 3"


async def test_site_staff_enrol_at_their_site_only_and_are_named_in_the_audit(
    ingest: httpx.AsyncClient,  # noqa: F811 - the fixture
    database_url: str,
) -> None:
    nurse = staff_auth("site-n", "site_staff", subject="nurse-n1", name="Nora N")
    body = {"participant_id": unique_id("P"), "site_id": "site-n", "timezone": "UTC"}
    r = await ingest.post("/v1/admin/participants", json=body, headers=nurse)
    assert r.status_code == 201, r.text
    elsewhere = {**body, "participant_id": unique_id("P"), "site_id": "site-m"}
    r = await ingest.post("/v1/admin/participants", json=elsewhere, headers=nurse)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    for role in ("monitor", "sponsor", "data_manager"):
        r = await ingest.post(
            "/v1/admin/participants", json=elsewhere, headers=staff_auth(None, role)
        )
        assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed"), role
    [entry] = await audited(database_url, "ingest", "participant", body["participant_id"])
    assert (entry["actor"], entry["actor_detail"]) == (
        "staff:nurse-n1",
        {"name": "Nora N", "role": "site_staff", "study": "default"},
    )
    # Readings are participant data: the site's staff read them, a sponsor does not, and
    # another site's staff do not learn the participant exists.
    path = f"/v1/participants/{body['participant_id']}/readings"
    params = {"from": "2026-01-01T00:00:00Z"}
    assert (await ingest.get(path, params=params, headers=nurse)).status_code == 200
    sponsor = await ingest.get(path, params=params, headers=staff_auth(None, "sponsor"))
    assert sponsor.status_code == 403
    stranger = await ingest.get(path, params=params, headers=staff_auth("site-m"))
    assert stranger.status_code == 404

"""Ingest's state changes (enrolment, device registration and revocation) are audited."""

from __future__ import annotations

import httpx
import pytest
from audit_helpers import audited, changes
from test_ingest_upload import ADMIN, enrol, ingest  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


async def test_enrolment_registration_and_revocation_are_in_the_audit_chain(
    ingest: httpx.AsyncClient,  # noqa: F811 - the fixture
    database_url: str,
) -> None:
    participant, device, _ = await enrol(ingest, site="site-q")
    r = await ingest.post(
        f"/v1/admin/devices/{device}/revoke", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert r.status_code == 200, r.text
    again = await ingest.post(
        f"/v1/admin/devices/{device}/revoke", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert again.status_code == 404  # nothing changed, nothing audited

    assert changes(await audited(database_url, "ingest", "participant", participant)) == [
        ("admin", "participant.enrolled", None, {"site_id": "site-q", "timezone": "UTC"})
    ]
    assert changes(await audited(database_url, "ingest", "device", device)) == [
        ("admin", "device.registered", None, {"participant_id": participant, "status": "active"}),
        (
            "admin",
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
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={"reason": "consent withdrawn at visit 3"},
    )
    assert r.status_code == 200, r.text
    again = await ingest.post(
        f"/v1/admin/participants/{participant}/withdraw",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={"reason": "a second click"},
    )
    assert again.status_code == 200  # the first withdrawal stands; nothing new to audit

    entries = await audited(database_url, "ingest", "participant", participant)
    assert [e["action"] for e in entries] == ["participant.enrolled", "participant.withdrawn"]
    withdrawal = entries[-1]
    assert withdrawal["old"] == {"status": "enrolled"}
    assert withdrawal["new"]["status"] == "withdrawn"
    assert withdrawal["reason"] == "consent withdrawn at visit 3"

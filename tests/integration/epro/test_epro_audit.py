"""ePRO's state changes are audited: definitions, schedules, credentials, responses and
corrections (with the answers before and after, and the reason)."""

from __future__ import annotations

import json

import asyncpg
import pytest
from audit_helpers import audited, changes
from epro_support import Epro, phq9_body
from trialstream import audit

pytestmark = pytest.mark.integration


async def test_response_and_corrections_are_audited_with_old_and_new_answers(epro: Epro) -> None:
    participant, app = await epro.enroll(site="site-au")
    nurse = await epro.staff("site-au")
    body = {**phq9_body(), "questionnaire_id": "pain-nrs", "answers": {"pain": 8}}
    assert (await epro.submit(app, body)).status_code == 201
    assert (await epro.submit(app, body)).status_code == 200  # a retry changes nothing
    own = {"based_on_version": 1, "reason": "tapped 8 instead of 3", "answers": {"pain": 3}}
    r = await epro.client.post(
        f"/v1/responses/{body['response_id']}/corrections", json=own, headers=app
    )
    assert r.status_code == 201, r.text
    staff = {"based_on_version": 2, "reason": "participant phoned: meant 2", "answers": {"pain": 2}}
    r = await epro.client.post(
        f"/v1/participants/{participant}/responses/{body['response_id']}/corrections",
        json=staff,
        headers=nurse,
    )
    assert r.status_code == 201, r.text
    nurse_id = r.json()["response"]["author"]

    entries = await audited(epro.database_url, "epro", "response", body["response_id"])
    assert [(e["actor"], e["action"]) for e in entries] == [
        (f"participant:{participant}", "response.submitted"),
        (f"participant:{participant}", "response.corrected"),
        (nurse_id, "response.corrected"),
    ]
    # the reasons are typed text: off the chain, erasable (decision 0087)
    assert entries[0]["reason"] is None
    assert all(e["reason"].startswith("sha256:") for e in entries[1:])
    conn = await asyncpg.connect(epro.database_url, server_settings={"search_path": "epro"})
    try:
        typed = [json.loads(await audit.erasable_text(conn, e["seq"]) or "") for e in entries[1:]]
    finally:
        await conn.close()
    assert typed == [
        {"reason": "tapped 8 instead of 3", "free_text": {}},
        {"reason": "participant phoned: meant 2", "free_text": {}},
    ]
    answers = [
        (e["old"] and e["old"]["answers"], e["new"]["version"], e["new"]["answers"])
        for e in entries
    ]
    assert answers == [
        (None, 1, {"pain": 8}),
        ({"pain": 8}, 2, {"pain": 3}),
        ({"pain": 3}, 3, {"pain": 2}),
    ]


async def test_schedules_credentials_and_definitions_are_audited(epro: Epro) -> None:
    participant, _ = await epro.enroll()
    assert changes(await audited(epro.database_url, "epro", "app_credential", participant)) == [
        ("staff:epro-admin", "app_credential.issued", None, {"status": "active"})
    ]
    r = await epro.client.post(
        f"/v1/admin/participants/{participant}/app-credentials/revoke", headers=epro.admin
    )
    assert r.json()["revoked"] == 1
    assert [
        e["action"] for e in await audited(epro.database_url, "epro", "app_credential", participant)
    ] == [
        "app_credential.issued",
        "app_credential.revoked",
    ]
    schedule = await audited(epro.database_url, "epro", "schedule", f"{participant}/diary-daily")
    assert changes(schedule) == [
        (
            "system:epro",
            "schedule.assigned",
            None,
            {"participant_id": participant, "schedule_id": "diary-daily", "study_id": "default"},
        )
    ]
    shipped = await audited(epro.database_url, "epro", "questionnaire", "phq-9@1")
    assert [(e["actor"], e["action"]) for e in shipped] == [
        ("system:epro", "questionnaire.published")
    ]

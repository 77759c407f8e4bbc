"""Publish, read, answer, sign, countersign, download the copy, export FHIR; and
ingest's gate: 403 `consent_required` before consent, readings measured before it
refused, readings after a partial withdrawal refused (real broker and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import Platform
from helpers import eventually, read_topic
from trialstream.events.topics import Topic
from trialstream.identity import Role

pytestmark = pytest.mark.integration


async def test_consent_gates_wearable_data_from_signature_to_partial_withdrawal(
    ts: Platform,
) -> None:
    who = await ts.enrol()
    participant, app = who.participant, who.app

    before_anything = datetime.now(UTC) - timedelta(minutes=1)
    refused = await ts.upload(who, before_anything)
    assert refused["status"] == 403, refused
    assert refused["error"]["code"] == "consent_required"
    assert refused["error"]["details"][0]["scope"] == "wearable"

    published = await ts.publish()
    assert published.status_code == 201, published.text
    sha = published.json()["sha256"]
    assert (await ts.publish()).status_code == 200  # the same text again: unchanged
    changed = await ts.publish(title="Another text under the same version")
    assert (changed.status_code, changed.json()["error"]["code"]) == (409, "version_published")

    shown = (await ts.consent.get("/v1/consent/document?language=en", headers=app)).json()
    assert shown["sha256"] == sha
    assert shown["document_version"] == 1
    assert "answer" not in shown["questions"][0]

    wrong = await ts.consent.post(
        "/v1/consent/comprehension",
        json={"document_version": 1, "language": "en", "answers": {"stop": 0}},
        headers=app,
    )
    assert wrong.json() == {
        "passed": False,
        "attempts": 1,
        "wrong": ["stop"],
        "review_sections": ["data"],
    }
    proof = (await ts.consent.post("/v1/consent/reauth", headers=app)).json()["reauth_proof"]
    body = {
        "document_version": 1,
        "language": "en",
        "document_sha256": sha,
        "scopes": ["wearable", "epro"],
        "reauth_proof": proof,
    }
    not_understood = await ts.consent.post("/v1/consent/signatures", json=body, headers=app)
    assert not_understood.json()["error"]["code"] == "comprehension_required"
    no_proof = await ts.consent.post(
        "/v1/consent/signatures", json={**body, "reauth_proof": "reauth_made-up"}, headers=app
    )
    assert (no_proof.status_code, no_proof.json()["error"]["code"]) == (401, "reauth_required")

    signed_after = datetime.now(UTC)
    signed = await ts.sign(app, ["wearable", "epro"])
    assert signed.status_code == 201, signed.text
    signature = signed.json()
    assert signature["document_sha256"] == sha
    assert signature["scopes"] == ["wearable", "epro"]
    signed_at = datetime.fromisoformat(signature["signed_at"])
    assert signed_at >= signed_after  # the server's clock
    assert signature["meaning"].startswith("I have read this information")

    now = datetime.now(UTC)

    async def accepted() -> dict[str, Any] | None:
        r = await ts.upload(who, signed_at - timedelta(minutes=5), now)
        return r if r["status"] == 200 else None

    result = await eventually(accepted)
    assert [r["status"] for r in result["results"]] == ["rejected", "accepted"]
    assert result["results"][0]["errors"][0]["code"] == "before_consent"

    # the investigator countersigns, with a recent sign-in only
    url = f"/v1/consent/signatures/{signature['signature_id']}/countersign"
    stale = await ts.consent.post(
        url, headers=ts.staff(Role.INVESTIGATOR, signed_in_seconds_ago=3600)
    )
    assert (stale.status_code, stale.json()["error"]["code"]) == (401, "step_up_required")
    nurse = await ts.consent.post(url, headers=ts.staff(Role.SITE_STAFF))
    assert nurse.json()["error"]["code"] == "role_not_allowed"
    done = await ts.consent.post(url, headers=ts.staff(Role.INVESTIGATOR, name="Dr Invest"))
    assert done.status_code == 200, done.text
    assert done.json()["countersignature"]["name"] == "Dr Invest"
    again = await ts.consent.post(url, headers=ts.staff(Role.INVESTIGATOR))
    assert again.json()["error"]["code"] == "already_countersigned"

    copy = await ts.consent.get(
        f"/v1/consent/signatures/{signature['signature_id']}/copy", headers=app
    )
    assert copy.status_code == 200
    assert copy.headers["content-type"].startswith("text/html")
    assert sha in copy.text
    assert "Dr Invest" in copy.text
    assert "attachment" in copy.headers["content-disposition"]

    # partial withdrawal: wearable stops, ePRO stays
    withdrawn = await ts.consent.post(
        "/v1/consent/withdrawals", json={"scopes": ["wearable"]}, headers=app
    )
    assert withdrawn.json() == {"scopes": ["epro"], "withdrawn_at": None}
    later = datetime.now(UTC) + timedelta(seconds=1)

    async def refused_after() -> dict[str, Any] | None:
        r = await ts.upload(who, signed_at + timedelta(milliseconds=1), later)
        codes = [e["errors"][0]["code"] for e in r.get("results", []) if e["status"] == "rejected"]
        return r if codes == ["consent_withdrawn"] else None

    late = await eventually(refused_after)
    assert [r["status"] for r in late["results"]] == ["accepted", "rejected"]

    states = await read_topic(
        ts.kafka, Topic.CONSENTS, match=lambda v: v.get("participant_id") == participant
    )
    assert [(s["revision"], s["change"]) for s in states] == [
        (1, "signed"),
        (2, "countersigned"),
        (3, "scope_withdrawn"),
    ]
    assert all("name" not in str(s) for s in states)  # no one's name on the topic

    export = await ts.consent.get(
        f"/v1/consent/fhir?study={ts.study}", headers=ts.staff(Role.DATA_MANAGER)
    )
    assert export.status_code == 200, export.text
    bundle = export.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    (entry,) = [e["resource"] for e in bundle["entry"]]
    assert entry["resourceType"] == "Consent"
    assert entry["status"] == "active"
    assert entry["patient"]["identifier"]["value"] == participant
    provisions = {
        p["code"][0]["coding"][0]["code"]: p["type"] for p in entry["provision"]["provision"]
    }
    assert provisions == {"wearable": "deny", "epro": "permit"}
    assert entry["verification"][0]["verified"] is True


async def test_a_witness_signs_beside_the_participant_and_a_representative_for_them(
    ts: Platform,
) -> None:
    assert (await ts.publish(questions=[])).status_code == 201
    witnessed, represented = await ts.enrol(), await ts.enrol()
    witness = {"role": "witness", "name": "Wanda Witness"}
    r = await ts.sign(witnessed.app, ["wearable"], representative=witness)
    assert r.status_code == 201, r.text
    assert r.json()["meaning"].startswith("I have read this information")
    assert r.json()["representative"]["meaning"].startswith("I witnessed")
    lar = {
        "role": "legally_authorised_representative",
        "name": "Larry Guardian",
        "relationship": "parent",
    }
    r = await ts.sign(represented.app, ["wearable"], representative=lar)
    assert r.status_code == 201, r.text
    assert r.json()["meaning"].startswith("As the participant's legally authorised")
    copy = await ts.consent.get(r.json()["copy"], headers=represented.app)
    assert "Larry Guardian" in copy.text
    states = await read_topic(
        ts.kafka,
        Topic.CONSENTS,
        match=lambda v: v.get("participant_id") in {witnessed.participant, represented.participant},
    )
    assert len(states) == 2
    assert not [s for s in states if "Wanda" in str(s) or "Larry" in str(s)]

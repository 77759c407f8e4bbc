"""A protocol amendment asks for re-consent by a deadline and the site sees who is
outstanding; a full withdrawal in the consent service becomes the participant's
withdrawal on the participants topic; a withdrawal recorded in ingest ends the consent
(real broker and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from consent_support import SITE, Platform, platform
from helpers import eventually, read_topic
from trialstream.db import migrate
from trialstream.events.topics import Topic
from trialstream.identity import Role
from trialstream.services import discover_services

pytestmark = pytest.mark.integration


async def outstanding(ts: Platform) -> list[dict[str, Any]]:
    r = await ts.consent.get(
        f"/v1/consent/outstanding?study={ts.study}&site={SITE}", headers=ts.staff()
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["outstanding"]
    return rows


async def test_an_amendment_lists_who_must_reconsent_until_they_sign_the_new_version(
    ts: Platform,
) -> None:
    assert (await ts.publish(questions=[])).status_code == 201
    first, second = await ts.enrol(), await ts.enrol()
    assert (await ts.sign(first.app, ["wearable"])).status_code == 201
    # never signed: outstanding from the start
    assert [(r["participant_id"], r["signed_version"]) for r in await outstanding(ts)] == [
        (second.participant, None)
    ]
    assert (await ts.sign(second.app, ["wearable", "epro"])).status_code == 201
    assert await outstanding(ts) == []

    deadline = date.today() + timedelta(days=14)
    amended = await ts.publish(2, questions=[], requires_reconsent=True, reconsent_by=str(deadline))
    assert amended.status_code == 201, amended.text
    older = await ts.publish(1, questions=[], language="de")
    assert (older.status_code, older.json()["error"]["code"]) == (409, "older_version")
    rows = await outstanding(ts)
    assert sorted(r["participant_id"] for r in rows) == sorted(
        [first.participant, second.participant]
    )
    assert {
        (r["signed_version"], r["required_version"], r["reconsent_by"], r["overdue"]) for r in rows
    } == {(1, 2, deadline.isoformat(), False)}
    due = await read_topic(
        ts.kafka,
        Topic.CONSENTS,
        match=lambda v: (
            v.get("participant_id") == first.participant and v.get("change") == "reconsent_due"
        ),
    )
    assert [(d["reconsent_version"], d["reconsent_by"]) for d in due] == [(2, deadline.isoformat())]

    # signing version 1 again is refused; version 2 clears the participant
    stale = await ts.consent.post(
        "/v1/consent/signatures",
        json={
            "document_version": 1,
            "language": "en",
            "document_sha256": "0" * 64,
            "scopes": ["wearable"],
            "reauth_proof": (await ts.consent.post("/v1/consent/reauth", headers=first.app)).json()[
                "reauth_proof"
            ],
        },
        headers=first.app,
    )
    assert stale.json()["error"]["code"] == "not_current_version"
    assert (await ts.sign(first.app, ["wearable"])).status_code == 201
    assert [r["participant_id"] for r in await outstanding(ts)] == [second.participant]
    # data keeps flowing under the first consent meanwhile (decision 0081)
    kept = await ts.upload(second, datetime.now(UTC))
    assert [r["status"] for r in kept["results"]] == ["accepted"]


@pytest.mark.parametrize("after_deadline", ["pause", "continue"])
async def test_after_a_missed_deadline_data_flows_only_where_the_study_says_it_may(
    kafka: str, database_url: str, after_deadline: str
) -> None:
    """Decision 0088: a study that pauses refuses, per reading, what was measured after the
    deadline day until the new version is signed; one that continues keeps collecting."""
    rules = {"after_reconsent_deadline": after_deadline}
    async with platform(kafka, database_url, consent=rules) as ts:
        assert (await ts.publish(questions=[])).status_code == 201
        who = await ts.enrol()
        assert (await ts.sign(who.app, ["wearable"])).status_code == 201

        async def flowing() -> dict[str, Any] | None:  # once ingest has the signature
            r = await ts.upload(who, datetime.now(UTC))
            return r if r["status"] == 200 else None

        assert [r["status"] for r in (await eventually(flowing))["results"]] == ["accepted"]

        missed = datetime.now(UTC).date() - timedelta(days=1)  # the deadline was yesterday
        amended = await ts.publish(
            2, questions=[], requires_reconsent=True, reconsent_by=str(missed)
        )
        assert amended.status_code == 201, amended.text
        [row] = await outstanding(ts)
        paused = after_deadline == "pause"
        assert (row["participant_id"], row["overdue"], row["data_paused"]) == (
            who.participant,
            True,
            paused,
        )

        async def judged() -> dict[str, Any] | None:
            # once ingest has the reconsent_due state, a paused study refuses
            r = await ts.upload(who, datetime.now(UTC))
            return r if r["results"][0]["status"] == "rejected" else None

        if after_deadline == "pause":
            refused = await eventually(judged)
            [error] = refused["results"][0]["errors"]
            assert (error["field"], error["code"]) == ("measured_at", "reconsent_overdue")
            assert (await ts.sign(who.app, ["wearable"])).status_code == 201  # version 2

            async def lifted() -> dict[str, Any] | None:
                r = await ts.upload(who, datetime.now(UTC))
                return r if r["results"][0]["status"] == "accepted" else None

            await eventually(lifted)
        else:
            await read_topic(  # ingest has had time to learn of the amendment
                ts.kafka,
                Topic.CONSENTS,
                match=lambda v: v.get("participant_id") == who.participant,
            )
            for _ in range(3):
                kept = await ts.upload(who, datetime.now(UTC))
                assert [r["status"] for r in kept["results"]] == ["accepted"]
                await asyncio.sleep(0.5)


async def audit_verify(database_url: str) -> tuple[int, str]:
    """`trialstream audit verify`, the real command, over every service's schema."""
    for info in discover_services():
        await migrate(database_url, schema=info.schema, directories=[info.migrations])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trialstream.cli",
        "audit",
        "verify",
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_full_withdrawal_in_consent_withdraws_the_participant_everywhere(
    ts: Platform, database_url: str
) -> None:
    assert (await ts.publish(questions=[])).status_code == 201
    who = await ts.enrol()
    assert (await ts.sign(who.app, ["wearable", "epro"])).status_code == 201
    before = datetime.now(UTC)
    r = await ts.consent.post(
        f"/v1/participants/{who.participant}/consent/withdrawals",
        json={"reason": "told the nurse by phone"},
        headers=ts.staff(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["scopes"] == []
    withdrawn_at = datetime.fromisoformat(r.json()["withdrawn_at"])
    assert withdrawn_at >= before

    async def participant_withdrawn() -> list[dict[str, Any]]:
        return await read_topic(
            ts.kafka,
            Topic.PARTICIPANTS,
            match=lambda v: (
                v.get("participant_id") == who.participant and v.get("status") == "withdrawn"
            ),
            timeout=3,
        )

    (state,) = await eventually(participant_withdrawn, timeout=30)
    assert datetime.fromisoformat(state["withdrawn_at"]) == withdrawn_at
    assert "reason" not in state  # the free text stays in the consent service's audit trail
    after = await ts.upload(who, datetime.now(UTC))
    assert after["results"][0]["errors"][0]["code"] in {
        "participant_withdrawn",
        "consent_withdrawn",
    }
    again = await ts.consent.post("/v1/consent/withdrawals", json={}, headers=who.app)
    assert again.json() == {"scopes": [], "withdrawn_at": withdrawn_at.isoformat()}

    # every change above is in the hash-chained audit trails, and they verify
    entries = await fetch_audit(database_url, who.participant)
    assert {"consent.signed", "consent.withdrawn", "participant.withdrawn"} <= entries
    code, out = await audit_verify(database_url)
    assert code == 0, out


async def fetch_audit(database_url: str, participant: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT action FROM consent.audit_trail WHERE entity_id = $1 OR entity_id IN"
            " (SELECT signature_id::text FROM consent.signatures WHERE participant_id = $1)"
            " UNION ALL SELECT action FROM ingest.audit_trail WHERE entity_id = $1",
            participant,
        )
    finally:
        await conn.close()
    return {r["action"] for r in rows}


async def test_a_withdrawal_recorded_in_ingest_ends_the_consent(ts: Platform) -> None:
    assert (await ts.publish(questions=[])).status_code == 201
    who = await ts.enrol()
    assert (await ts.sign(who.app, ["wearable"])).status_code == 201
    r = await ts.ingest.post(
        f"/v1/admin/participants/{who.participant}/withdraw",
        json={"reason": "moved away"},
        headers=ts.staff(),
    )
    assert r.status_code == 200, r.text

    async def ended() -> dict[str, Any] | None:
        mine = (await ts.consent.get("/v1/consent/me", headers=who.app)).json()
        return mine if mine["state"]["change"] == "withdrawn" else None

    mine = await eventually(ended, timeout=30)
    assert mine["scopes_in_force"] == []
    signing = await ts.sign(who.app, ["wearable"])
    assert (signing.status_code, signing.json()["error"]["code"]) == (409, "participant_withdrawn")


async def test_staff_of_another_site_do_not_see_the_participant(ts: Platform) -> None:
    who = await ts.enrol()
    elsewhere = staff_elsewhere(ts)
    r = await ts.consent.get(f"/v1/participants/{who.participant}/consent", headers=elsewhere)
    assert r.status_code == 404
    r = await ts.consent.get(f"/v1/participants/{who.participant}/consent", headers=ts.staff())
    assert r.status_code == 200
    assert r.json()["scopes_in_force"] == []


def staff_elsewhere(ts: Platform) -> dict[str, str]:
    from staff_tokens import staff_auth

    return staff_auth("site-b", Role.SITE_STAFF, study=ts.study)

"""Erasure through the consent service and ingest on the real broker and PostgreSQL
(decision 0086): staff ask (with a recent sign-in, a legal basis from the list), both
services erase and report it on the erasure-status topic, the request shows each one
done; the withdrawal's free text is gone from every table of both schemas and from every
topic, the readings are gone where the study keeps no collected data, and both audit
chains still verify, with the erasure on record (pseudonymous)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from consent_support import MODULES, SITE, Platform
from helpers import announce_study, eventually, read_topic, topics_holding
from trialstream.audit_verify import verify_chain
from trialstream.events.topics import Topic
from trialstream.identity import Role

pytestmark = pytest.mark.integration
REASON = "Moving to Lyon with my sister Marie Durand, call 06 12 34 56 78"


async def rows_mentioning(conn: asyncpg.Connection, schema: str, needle: str) -> list[str]:
    """Every table of `schema` with a row whose text holds `needle`."""
    tables = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
        schema,
    )
    found = []
    for t in tables:
        query = f'SELECT count(*) FROM "{schema}"."{t["relname"]}" AS r WHERE r::text LIKE $1'  # noqa: S608
        if await conn.fetchval(query, f"%{needle}%"):
            found.append(t["relname"])
    return found


async def test_an_erasure_reaches_consent_and_ingest_and_the_audit_still_verifies(
    ts: Platform, database_url: str
) -> None:
    await announce_study(
        ts.kafka, ts.study, MODULES, [SITE], version=2, erasure={"keep_collected_data": False}
    )
    assert (await ts.publish()).status_code == 201
    who = await ts.enrol()
    assert (await ts.sign(who.app, ["wearable", "epro"])).status_code == 201
    now = datetime.now(UTC)

    async def uploaded() -> dict[str, Any] | None:
        r = await ts.upload(who, now + timedelta(seconds=1), now + timedelta(seconds=2))
        return r if r["status"] == 200 and r["results"][0]["status"] == "accepted" else None

    await eventually(uploaded)  # once ingest has read the signature
    withdrawn = await ts.consent.post(
        f"/v1/participants/{who.participant}/consent/withdrawals",
        json={"scopes": ["epro"], "reason": REASON},
        headers=ts.staff(),
    )
    assert withdrawn.status_code == 200, withdrawn.text

    url = f"/v1/participants/{who.participant}/erasure"
    assert (await ts.consent.get(url, headers=ts.staff())).status_code == 404
    stale = await ts.consent.post(
        url,
        json={"legal_basis": "art17-1b"},
        headers=ts.staff(Role.INVESTIGATOR, signed_in_seconds_ago=3600),
    )
    assert (stale.status_code, stale.json()["error"]["code"]) == (401, "step_up_required")
    bad = await ts.consent.post(url, json={"legal_basis": "because"}, headers=ts.staff())
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"].endswith("legal_basis")

    async def study_v2_read() -> bool:
        r = await ts.consent.post(url, json={"legal_basis": "art17-1b"}, headers=ts.staff())
        assert r.status_code == 202, r.text
        return r.json()["keep_collected_data"] is False

    await eventually(study_v2_read)

    async def finished() -> dict[str, Any] | None:
        r = (await ts.consent.get(url, headers=ts.staff())).json()
        done = {name for name, s in r["services"].items() if s["done"]}
        return r if {"consent", "ingest"} <= done else None

    status = await eventually(finished, timeout=30)
    assert status["legal_basis"] == "art17-1b"
    assert status["requested_by"] == "staff"
    assert status["services"]["ingest"]["erased"]["archive_rows"] == 2
    # (an earlier request, made before the services read the study's new version, may
    # have erased the credential and the reason already: the counts are this request's)
    assert {"credentials", "audit_texts"} <= set(status["services"]["consent"]["erased"])
    # services not running here are shown as waiting, not done
    assert status["complete"] is False
    assert status["services"]["epro"] == {"done": False}
    # the participant's app credential is gone with the rest
    assert (await ts.consent.get("/v1/consent/me", headers=who.app)).status_code == 401

    conn = await asyncpg.connect(database_url)
    try:
        for schema in ("consent", "ingest"):
            assert await rows_mentioning(conn, schema, REASON) == [], schema
            assert await rows_mentioning(conn, schema, "Marie Durand") == [], schema
            report = await verify_chain(conn, schema)
            assert report.broken is None, report
            erased = await conn.fetchval(
                f"SELECT new FROM {schema}.audit_trail"  # noqa: S608
                " WHERE action = 'erasure.completed' AND entity_id = $1",
                who.participant,
            )
            assert json.loads(erased)["legal_basis"] == "art17-1b"
        assert not await conn.fetchval(
            "SELECT count(*) FROM ingest.readings WHERE participant_id = $1", who.participant
        )
        requested = await conn.fetchrow(
            "SELECT actor, new FROM consent.audit_trail WHERE action = 'erasure.requested'"
        )
        assert requested["actor"].startswith("staff:")
        # the withdrawal's entry keeps only a salted digest of the reason
        digest = await conn.fetchval(
            "SELECT reason FROM consent.audit_trail WHERE action = 'consent.scope_withdrawn'"
        )
        assert digest.startswith("sha256:")
        assert "Marie" not in digest
    finally:
        await conn.close()

    holding = await topics_holding(ts.kafka, "Marie")
    assert holding.pop("(records read)") > 0
    assert holding == {}
    requests = await read_topic(
        ts.kafka, Topic.ERASURES, match=lambda v: v.get("participant_id") == who.participant
    )
    assert requests
    assert requests[-1]["legal_basis"] == "art17-1b"

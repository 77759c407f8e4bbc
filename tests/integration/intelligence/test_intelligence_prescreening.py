"""Pre-screening against the real broker and PostgreSQL: uploads of FHIR bundles,
decisions stored without identifying fields and re-made on demand, the ranked list
scoped by role, sponsors' aggregates, referral -> enrolment through ingest's admin route
(seen on the participants topic), and enrollment forecasts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
from helpers import announce_study, eventually, publish_to, serving, unique_id
from ingest.main import create_app as ingest_app
from ingest.settings import IngestSettings
from intelligence.main import create_app
from intelligence.settings import IntelligenceSettings
from staff_tokens import JWKS, staff_auth
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

from benchmarks.intelligence.bundles import ICD10, LOINC, bundle

pytestmark = pytest.mark.integration

COMMON: dict[str, Any] = {"oidc_jwks": JWKS, "kafka_session_timeout_ms": 2000}
CRITERIA = {
    "version": 2,
    "criteria": [
        {"id": "adult", "kind": "age", "min": 18, "max": 90, "text": "Aged 18 to 90"},
        {"id": "hf", "kind": "diagnosis", "text": "Heart failure",
         "codes": [{"system": ICD10, "code": "I50"}]},
        {"id": "bnp", "kind": "lab", "text": "NT-proBNP >= 400 pg/mL", "unit": "pg/mL",
         "codes": [{"system": LOINC, "code": "33762-6"}], "min": 400, "within_days": 90},
    ],
}  # fmt: skip


@pytest.fixture
async def app(kafka: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = IntelligenceSettings(
        kafka_bootstrap_servers=kafka, database_url=database_url, **COMMON
    )
    async with serving(create_app(settings)) as client:
        await eventually(lambda: _ready(client))
        yield client


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


def candidate(
    pseudonym: str, *, bnp: float | None = 900, age_days: int = 60 * 365
) -> dict[str, Any]:
    """A Bundle with a name, phone, address and MRN (dropped at the edge), HF, one BNP."""
    doc = bundle(np.random.default_rng(1), 1)
    patient = doc["entry"][0]["resource"]
    patient["identifier"][1]["value"] = pseudonym
    patient["name"] = [{"family": "Mustermann", "given": ["Erika"]}]
    patient["telecom"] = [{"system": "phone", "value": "+49 30 5550199"}]
    patient["identifier"][0]["value"] = "MRN-SECRET-77"
    patient["birthDate"] = (date(2026, 11, 1) - timedelta(days=age_days)).isoformat()
    entries: list[dict[str, Any]] = [
        {"resource": patient},
        {"resource": {"resourceType": "Condition",
                      "code": {"coding": [{"system": ICD10, "code": "I50.9"}]}}},
    ]  # fmt: skip
    if bnp is not None:
        entries.append(
            {"resource": {"resourceType": "Observation", "status": "final",
                          "code": {"coding": [{"system": LOINC, "code": "33762-6"}]},
                          "valueQuantity": {"value": bnp, "code": "pg/mL"},
                          "effectiveDateTime": "2026-10-20"}}
        )  # fmt: skip
    return {**doc, "entry": entries}


async def study_with_criteria(kafka: str, sites: list[str], **extra: Any) -> str:
    study = unique_id("S")
    await announce_study(kafka, study, ["ingest"], sites, eligibility=CRITERIA, **extra)
    return study


async def upload(
    client: httpx.AsyncClient, site: str, auth: dict[str, str], *bundles: dict[str, Any]
) -> httpx.Response:
    if len(bundles) == 1:
        return await client.post(
            "/v1/candidates", params={"site": site}, json=bundles[0], headers=auth
        )
    body = "\n".join(json.dumps(b) for b in bundles)
    return await client.post(
        "/v1/candidates/batch",
        params={"site": site},
        content=body,
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )


async def uploaded(
    client: httpx.AsyncClient, site: str, auth: dict[str, str], *bundles: dict[str, Any]
) -> dict[str, Any]:
    async def attempt() -> dict[str, Any] | None:
        r = await upload(client, site, auth, *bundles)
        if r.status_code == 409 and r.json()["error"]["code"] == "no_screening_study":
            return None  # the study is not read from the topic yet
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    return await eventually(attempt)


async def test_a_candidate_is_decided_per_study_and_nothing_identifying_is_stored(
    app: httpx.AsyncClient, kafka: str, database_url: str
) -> None:
    site = unique_id("site")
    study = await study_with_criteria(kafka, [site])
    nurse = staff_auth(site, "site_staff", study=study)
    answer = await uploaded(
        app, site, nurse, candidate("Cand-ok"),
        candidate("Cand-low", bnp=120), candidate("Cand-nolab", bnp=None),
    )  # fmt: skip
    assert answer["candidates"] == 3
    assert answer["decisions"] == {
        f"{study}:eligible": 1, f"{study}:ineligible": 1, f"{study}:needs_review": 1
    }  # fmt: skip
    single = (await upload(app, site, nurse, candidate("Cand-one", bnp=120))).json()
    [decided] = single["decisions"]
    assert (decided["decision"], decided["criteria_version"]) == ("ineligible", 2)
    failed = [c for c in decided["explanation"] if c["outcome"] == "fail"]
    assert [c["id"] for c in failed] == ["bnp"]

    conn = await asyncpg.connect(database_url)
    try:
        stored = "\n".join(
            [r["t"] for r in await conn.fetch("SELECT c::text AS t FROM intelligence.candidates c")]
            + [
                r["t"]
                for r in await conn.fetch("SELECT d::text AS t FROM intelligence.decisions d")
            ]
            + [
                r["t"]
                for r in await conn.fetch("SELECT a::text AS t FROM intelligence.audit_trail a")
            ]
        )
    finally:
        await conn.close()
    assert "Cand-ok" in stored
    for identifying in ("Mustermann", "Erika", "5550199", "MRN-SECRET-77", "Example Street"):
        assert identifying not in stored

    verified = (await app.get("/v1/candidates/Cand-ok/verification", headers=nurse)).json()
    assert [
        (d["study_id"], d["stored"], d["remade"], d["same"]) for d in verified["decisions"]
    ] == [(study, "eligible", "eligible", True)]

    # decisions store one outcome code per criterion; the ranked list re-makes the
    # explanation the upload answered from them, the criteria and the stored record
    listed = await app.get(
        f"/v1/studies/{study}/sites/{site}/candidates",
        params={"decision": "ineligible"},
        headers=nurse,
    )
    [one] = [c for c in listed.json()["candidates"] if c["candidate_id"] == "Cand-one"]
    assert one["explanation"] == decided["explanation"]
    # a stored outcome that the record and criteria no longer give is reported as not same
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE intelligence.decisions SET outcomes = set_byte(outcomes, 0, 1)"
            " WHERE candidate_id = 'Cand-ok'"
        )
    finally:
        await conn.close()
    verified = (await app.get("/v1/candidates/Cand-ok/verification", headers=nurse)).json()
    assert [(d["stored"], d["remade"], d["same"]) for d in verified["decisions"]] == [
        ("eligible", "eligible", False)
    ]


async def test_a_bad_line_of_a_batch_is_named_and_nothing_is_stored(
    app: httpx.AsyncClient, kafka: str
) -> None:
    site = unique_id("site")
    study = await study_with_criteria(kafka, [site])
    nurse = staff_auth(site, "site_staff", study=study)
    no_pseudonym = candidate("Cand-x")
    no_pseudonym["entry"][0]["resource"]["identifier"] = []
    r = await upload(
        app, site, nurse, candidate("Cand-a"), no_pseudonym, {"resourceType": "Bundle"}
    )
    assert r.status_code == 422
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert any(f.startswith("lines[1]") for f in fields)
    assert any(f.startswith("lines[2].type") for f in fields)
    assert not any(f.startswith("lines[0]") for f in fields)
    listed = await app.get(f"/v1/studies/{study}/sites/{site}/candidates", headers=nurse)
    assert listed.json()["candidates"] == []


async def test_the_ranked_list_is_for_the_sites_staff_and_sponsors_see_only_counts(
    app: httpx.AsyncClient, kafka: str
) -> None:
    berlin, lyon = unique_id("site"), unique_id("site")
    study = await study_with_criteria(kafka, [berlin, lyon])
    nurse = staff_auth(berlin, "site_staff", study=study)
    await uploaded(
        app, berlin, nurse, candidate("Rank-near", bnp=410), candidate("Rank-far", bnp=5000),
        candidate("Rank-review", bnp=None), candidate("Rank-out", bnp=10),
    )  # fmt: skip
    r = await app.get(f"/v1/studies/{study}/sites/{berlin}/candidates", headers=nurse)
    ranked = r.json()["candidates"]
    # eligible first, the one far inside its limits before the one at its limit; then review
    assert [c["candidate_id"] for c in ranked] == ["Rank-far", "Rank-near", "Rank-review"]
    assert ranked[0]["risk"] < ranked[1]["risk"]
    assert {c["id"] for c in ranked[2]["explanation"] if c["outcome"] == "unknown"} == {"bnp"}

    lyon_nurse = staff_auth(lyon, "site_staff", study=study)
    r = await app.get(f"/v1/studies/{study}/sites/{berlin}/candidates", headers=lyon_nurse)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    r = await upload(app, berlin, lyon_nurse, candidate("Rank-steal"))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    r = await upload(app, lyon, lyon_nurse, candidate("Rank-near", bnp=99))  # Berlin's
    assert (r.status_code, r.json()["error"]["code"]) == (409, "candidate_elsewhere")
    other = staff_auth(None, "site_staff", study=unique_id("S"))
    r = await app.get(f"/v1/studies/{study}/sites/{berlin}/candidates", headers=other)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_study")

    sponsor = staff_auth(None, "sponsor", study=study)
    r = await app.get(f"/v1/studies/{study}/sites/{berlin}/candidates", headers=sponsor)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    summary = await app.get(f"/v1/studies/{study}/prescreening", headers=sponsor)
    assert summary.status_code == 200
    assert summary.json()["sites"] == [
        {"site_id": berlin, "decisions": {"eligible": 2, "needs_review": 1, "ineligible": 1},
         "status": {"evaluated": 4}}
    ]  # fmt: skip
    assert summary.json()["criteria"] == [
        {"criterion": "bnp", "outcome": "fail", "n": 1},
        {"criterion": "bnp", "outcome": "unknown", "n": 1},
    ]
    assert "Rank-" not in summary.text
    r = await app.get(
        f"/v1/studies/{study}/prescreening", headers=staff_auth(None, "sponsor", study="other")
    )
    assert r.status_code == 404


async def test_a_referral_converts_when_ingest_enrols_the_candidate(
    app: httpx.AsyncClient, kafka: str, database_url: str
) -> None:
    site = unique_id("site")
    study = await study_with_criteria(kafka, [site])
    nurse = staff_auth(site, "site_staff", study=study)
    await uploaded(
        app, site, nurse, candidate("Conv-yes"), candidate("Conv-fail"), candidate("Conv-no", bnp=1)
    )
    base = f"/v1/studies/{study}/candidates"
    r = await app.post(f"{base}/Conv-no/referral", headers=nurse)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "ineligible")
    for who in ("Conv-yes", "Conv-fail"):
        r = await app.post(f"{base}/{who}/referral", headers=nurse)
        assert r.json()["status"] == "referred"
    r = await app.post(
        f"{base}/Conv-fail/screening", json={"outcome": "screen_failed"}, headers=nurse
    )
    assert r.status_code == 422  # a failure needs its reason
    r = await app.post(
        f"{base}/Conv-fail/screening",
        json={"outcome": "screen_failed", "reason": "eGFR below 30 at screening"},
        headers=nurse,
    )
    assert r.json()["status"] == "screen_failed"

    ingest_settings = IngestSettings(
        kafka_bootstrap_servers=kafka, database_url=database_url, **COMMON
    )
    async with serving(ingest_app(ingest_settings)) as ingest:

        async def enrolled() -> bool:
            r = await ingest.post(
                "/v1/admin/participants",
                json={"participant_id": "Conv-yes", "study_id": study, "site_id": site},
                headers=nurse,
            )
            return r.status_code in (201, 409)

        await eventually(enrolled)

        async def converted() -> dict[str, Any] | None:
            r = await app.get(f"/v1/studies/{study}/prescreening", headers=nurse)
            status = r.json()["sites"][0]["status"]
            return r.json() if status.get("enrolled") else None

        summary = await eventually(converted, timeout=30)
    assert summary["sites"][0]["status"] == {"enrolled": 1, "screen_failed": 1, "evaluated": 1}
    assert summary["screen_failure_reasons"] == [{"reason": "eGFR below 30 at screening", "n": 1}]


async def test_the_forecast_follows_enrolments_with_an_interval_as_json_and_csv(
    app: httpx.AsyncClient, kafka: str
) -> None:
    fast, slow = unique_id("site"), unique_id("site")
    opened = (datetime.now(UTC) - timedelta(days=100)).date().isoformat()
    study = unique_id("S")
    plan = {"target": 60, "start": opened, "sites": [{"site": fast, "target": 40}]}
    await announce_study(kafka, study, ["ingest"], [fast, slow], enrollment=plan)
    auth = staff_auth(None, "sponsor", study=study)

    async def forecast() -> dict[str, Any] | None:
        r = await app.get(f"/v1/studies/{study}/forecast", headers=auth)
        return r.json() if r.status_code == 200 and r.json()["enrolled"] == 24 else None

    now = datetime.now(UTC)
    events = [
        (pid, ParticipantState(participant_id=pid, study_id=study, site_id=site,
                               occurred_at=now - timedelta(days=90 - 4 * i)))
        for i in range(20) for pid, site in [(unique_id("P"), fast)]
    ] + [
        (pid, ParticipantState(participant_id=pid, study_id=study, site_id=slow))
        for pid in [unique_id("P") for _ in range(4)]
    ]  # fmt: skip
    await publish_to(kafka, Topic.PARTICIPANTS, events)
    made = await eventually(forecast, timeout=30)
    assert made["target"] == 60
    window = made["forecast"]
    assert window["lower"] < window["expected"] < window["upper"]
    assert date.fromisoformat(window["lower"]) > now.date()
    sites = {s["site_id"]: s for s in made["sites"]}
    assert sites[fast]["enrolled"] == 20
    assert sites[fast]["rate_per_30_days"] > sites[slow]["rate_per_30_days"]
    assert sites[fast]["forecast"] is not None
    assert sites[slow]["forecast"] is None

    r = await app.get(f"/v1/studies/{study}/forecast.csv", params={"level": 0.8}, headers=auth)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["scope"], row["site_id"]) for row in rows] == [
        ("study", ""), ("site", fast), ("site", slow)
    ]  # fmt: skip
    assert rows[0]["level"] == "0.8"
    assert rows[0]["lower"] <= rows[0]["expected"] <= rows[0]["upper"]

    r = await app.get(
        f"/v1/studies/{study}/forecast", headers=staff_auth(None, "sponsor", study="x")
    )
    assert r.status_code == 404

    # a role of one site sees the study's figures and that site only, in both forms
    nurse = staff_auth(slow, "site_staff", study=study)
    mine = (await app.get(f"/v1/studies/{study}/forecast", headers=nurse)).json()
    assert [s["site_id"] for s in mine["sites"]] == [slow]
    assert (mine["target"], mine["enrolled"]) == (60, 24)
    r = await app.get(f"/v1/studies/{study}/forecast.csv", headers=nurse)
    assert fast not in r.text


async def test_a_study_without_a_target_has_no_forecast_and_a_site_without_a_study_no_screening(
    app: httpx.AsyncClient, kafka: str
) -> None:
    site = unique_id("site")
    study = await study_with_criteria(kafka, [site])
    auth = staff_auth(site, "site_staff", study=study)
    await uploaded(app, site, auth, candidate("Lone-1"))  # the study is read by now
    r = await app.get(f"/v1/studies/{study}/forecast", headers=auth)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "no_enrollment_target")
    r = await upload(
        app, unique_id("site"), staff_auth(None, "platform_admin"), candidate("Lone-2")
    )
    assert (r.status_code, r.json()["error"]["code"]) == (409, "no_screening_study")

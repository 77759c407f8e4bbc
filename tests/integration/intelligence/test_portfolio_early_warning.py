"""The portfolio's early-warning lights over the real broker and PostgreSQL (decision
0090): monitoring's evaluation publishes each (study, site)'s KRI snapshot, retention's
scoring each site's dropout-risk summary, both aggregates only; intelligence follows both
topics and shows the lights in the JSON, the CSV and the pages, 'unknown' where nothing
arrived, and a site role only its sites'."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from helpers import announce_study, eventually, publish_to, read_topic, serving, unique_id
from intelligence.main import create_app as intelligence_app
from intelligence.settings import IntelligenceSettings
from monitoring.main import create_app as monitoring_app
from monitoring.rbm import kri_evaluation
from monitoring.settings import MonitoringSettings
from retention import scoring
from retention.main import create_app as retention_app
from staff_tokens import JWKS, staff_auth
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

from tests.integration.intelligence.test_intelligence_portfolio import _cookie, _row
from tests.integration.monitoring.monitoring_support import alert_for, monitoring_settings
from tests.integration.retention.retention_support import settings_for

pytestmark = pytest.mark.integration


@dataclass
class Platform:
    monitoring: FastAPI
    monitoring_settings: MonitoringSettings
    retention: FastAPI
    intelligence: httpx.AsyncClient


@pytest.fixture
async def platform(kafka: str, database_url: str) -> AsyncIterator[Platform]:
    # the services' own loops stay out of the way: the test evaluates and scores itself
    mon_settings = monitoring_settings(kafka, database_url, kri_interval_seconds=3600)
    mon = monitoring_app(mon_settings)
    ret = retention_app(settings_for(kafka, database_url))
    intel = intelligence_app(
        IntelligenceSettings(
            kafka_bootstrap_servers=kafka,
            database_url=database_url,
            oidc_jwks=JWKS,
            kafka_session_timeout_ms=2000,
        )
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serving(mon))
        await stack.enter_async_context(serving(ret))
        client = await stack.enter_async_context(serving(intel))
        yield Platform(mon, mon_settings, ret, client)


async def _count(app: FastAPI, sql: str, *args: Any) -> int:
    return int(await app.state.runtime.pool.fetchval(sql, *args))


async def test_snapshots_from_monitoring_and_retention_light_the_portfolio(
    platform: Platform, kafka: str
) -> None:
    a, b, study = unique_id("site"), unique_id("site"), unique_id("S")
    start = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()
    modules = ["ingest", "monitoring", "retention"]
    await announce_study(kafka, study, modules, [a, b], enrollment={"target": 40, "start": start})
    now = datetime.now(UTC)
    people = [unique_id("P") for _ in range(3)]
    enrolled = [
        ParticipantState(participant_id=p, study_id=study, site_id=a, occurred_at=now - timedelta(days=30))
        for p in people
    ]  # fmt: skip
    await publish_to(kafka, Topic.PARTICIPANTS, [(e.participant_id, e) for e in enrolled])
    # two alerts nobody acknowledged, 90 and 10 minutes old
    alerts = [alert_for(people[0], minutes_ago=m) for m in (90, 10)]
    await publish_to(kafka, Topic.ALERTS, [(people[0], x) for x in alerts])

    mon, ret = platform.monitoring, platform.retention
    in_monitoring = (
        "SELECT count(*) FROM participants WHERE study_id = $1 AND participant_id = ANY($2)"
    )
    await eventually(lambda: _at(3, _count(mon, in_monitoring, study, people)))
    await eventually(
        lambda: _at(
            3,
            _count(
                mon, "SELECT count(*) FROM rbm_participants WHERE participant_id = ANY($1)", people
            ),
        )
    )
    await eventually(
        lambda: _at(
            2, _count(mon, "SELECT count(*) FROM alerts WHERE participant_id = $1", people[0])
        )
    )
    await eventually(
        lambda: _at(3, _count(ret, "SELECT count(*) FROM participants WHERE study_id = $1", study))
    )
    studies = mon.state.runtime.studies
    await eventually(lambda: _true(studies.get(study) is not None))  # fmt: skip

    cfg = platform.monitoring_settings
    made = await kri_evaluation.evaluate(
        mon.state.runtime.pool, cfg.kri_config(), cfg.flag_rules(), studies
    )
    assert made is not None
    assert await scoring.score_all(ret.state.runtime.pool, ret.state.model, now, 0.3) >= 3

    def ours(v: dict[str, Any]) -> bool:
        return v.get("study_id") == study

    # the latest of each (the services' own first passes ran before the study had anyone)
    snap = (await eventually(lambda: _some(read_topic(kafka, Topic.KRI_SNAPSHOTS, match=ours))))[-1]
    assert (snap["site_id"], snap["participants"]) == (a, 3)
    assert (snap["open_alerts"], snap["open_flags"], snap["alerts_in_window"]) == (2, 0, 2)
    assert snap["participant_days"] == pytest.approx(21.0, abs=0.01)  # 3 x the 7-day window
    risk = (await eventually(lambda: _some(read_topic(kafka, Topic.RETENTION_RISK, match=ours))))[
        -1
    ]
    assert (risk["site_id"], risk["participants_scored"], risk["high_risk_cutoff"]) == (a, 3, 0.3)
    for record in (snap, risk):
        assert not any(p in json.dumps(record) for p in people)  # aggregates only

    sponsor = staff_auth(None, "sponsor", study=study)
    client = platform.intelligence

    async def lit() -> dict[str, Any] | None:
        r = await client.get("/v1/portfolio", params={"study": study}, headers=sponsor)
        assert r.status_code == 200, r.text
        found = r.json()["studies"]
        sites = {s["site_id"]: s for s in found[0]["sites"]} if found else {}
        w = sites.get(a, {}).get("early_warning")
        ready = w and w["alert_load"]["as_of"] and w["retention_risk"]["as_of"]
        return found[0] if ready else None

    made_study = await eventually(lit, timeout=30)
    sites = {s["site_id"]: s["early_warning"] for s in made_study["sites"]}
    mine = sites[a]
    # no readings in the window: 0 % wear time, red by monitoring's settings (red < 60 %)
    dc = mine["data_completeness"]
    assert (dc["status"], dc["value"], dc["threshold"]["red"], dc["stale"]) == (
        "red",
        0.0,
        60.0,
        False,
    )
    # the median age of the two open alerts since monitoring received them: just now
    ack = mine["time_to_acknowledge"]
    [sent] = [k for k in snap["kris"] if k["kri"] == "ack_median"]
    assert (ack["value"], ack["status"], ack["unit"]) == (sent["value"], "green", "min")
    assert ack["value"] < 5
    load = mine["alert_load"]
    assert (load["open_alerts"], load["open_flags"], load["status"]) == (2, 0, "green")
    assert load["value"] == pytest.approx(2 / 21, abs=1e-3)
    rr = mine["retention_risk"]
    assert rr["participants_scored"] == 3
    assert rr["value"] == pytest.approx(100 * risk["high_risk_share"])
    assert rr["model_version"] == ret.state.model.version
    share = rr["value"]
    assert rr["status"] == ("red" if share > 35 else "amber" if share > 20 else "green")
    # the other site sent nothing: unknown, with no time
    assert {w["status"] for w in sites[b].values()} == {"unknown"}
    assert {w["as_of"] for w in sites[b].values()} == {None}
    assert made_study["early_warning"]["data_completeness"] == "red"  # its worst site's

    r = await client.get("/v1/portfolio.csv", params={"study": study}, headers=sponsor)
    rows = {row["site_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert (
        rows[a]["data_completeness"],
        rows[a]["open_alerts"],
        rows[a]["participants_scored"],
    ) == ("red", "2", "3")
    assert (rows[b]["alert_load"], rows[b]["kris_as_of"]) == ("unknown", "")
    assert rows[""]["data_completeness"] == "red"

    page = await client.get("/portfolio", headers=_cookie(sponsor))
    row = _row(page.text, a)
    assert 'class="ew data_completeness" data-status="red"' in row
    assert "2 open alerts, 0 flags" in row
    assert "no snapshot yet" in _row(page.text, b)
    drill = await client.get(f"/portfolio/{study}/sites/{a}", headers=_cookie(sponsor))
    assert drill.status_code == 200
    assert "Early warning" in drill.text
    assert 'class="ew time_to_acknowledge" data-status="green"' in drill.text
    assert "2 open alerts, 0 open flags" in drill.text
    assert not any(p in page.text + drill.text for p in people)

    # a site role sees its site's lights only, and the study's light is theirs alone
    theirs = staff_auth(b, "site_staff", study=study)
    r = await client.get("/v1/portfolio", params={"study": study}, headers=theirs)
    [seen] = r.json()["studies"]
    assert [s["site_id"] for s in seen["sites"]] == [b]
    assert set(seen["early_warning"].values()) == {"unknown"}
    stranger = staff_auth(None, "sponsor", study=unique_id("S"))
    assert (await client.get("/v1/portfolio", headers=stranger)).json()["studies"] == []


async def _at(n: int, found: Any) -> bool:
    return bool(await found == n)


async def _true(value: bool) -> bool:
    return value


async def _some(found: Any) -> list[dict[str, Any]] | None:
    got: list[dict[str, Any]] = await found
    return got or None

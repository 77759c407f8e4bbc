"""A study's aggregates (`GET /v1/studies/{study}/summary`): what a sponsor sees. Counts
per site, never a participant; a site role sees its own sites only; a study without a
role of yours is not there."""

from __future__ import annotations

import pytest
from helpers import announce_study, eventually, fetchval, unique_id
from monitoring_support import Monitoring, alert_for, publish
from staff_tokens import staff_auth
from trialstream.events.alerts import Severity
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


async def test_a_sponsor_sees_counts_per_site_and_no_participant(monitoring: Monitoring) -> None:
    study, other = unique_id("S"), unique_id("S")
    await announce_study(monitoring.kafka, study, ["ingest", "monitoring"], ["site-a", "site-b"])
    await announce_study(monitoring.kafka, other, ["ingest", "epro"], ["site-a"])
    at_a = [await monitoring.enrolled("site-a", study) for _ in range(2)]
    at_b = await monitoring.enrolled("site-b", study)
    elsewhere = await monitoring.enrolled("site-a")  # the default study's site-a
    alerts = [
        (at_a[0], alert_for(at_a[0], severity=Severity.HIGH)),
        (at_a[1], alert_for(at_a[1], severity=Severity.MEDIUM)),
        (at_b, alert_for(at_b, severity=Severity.HIGH)),
        (elsewhere, alert_for(elsewhere, severity=Severity.HIGH)),
    ]
    await publish(monitoring.kafka, Topic.ALERTS, alerts)

    async def stored() -> bool:
        sql = "SELECT count(*) FROM monitoring.alerts WHERE participant_id = ANY($1)"
        return await fetchval(monitoring.database_url, sql, [p for p, _ in alerts]) == 4

    await eventually(stored)
    sponsor = staff_auth(None, "sponsor", study=study)

    async def summary() -> dict[str, object] | None:
        r = await monitoring.client.get(f"/v1/studies/{study}/summary", headers=sponsor)
        return r.json() if r.status_code == 200 else None  # 503 until the study is read

    body = await eventually(summary)
    sites = {s["site_id"]: s for s in body["sites"]}  # type: ignore[attr-defined]
    assert sorted(sites) == ["site-a", "site-b"]
    assert (sites["site-a"]["enrolled"], sites["site-a"]["withdrawn"]) == (2, 0)
    assert sites["site-a"]["alerts"] == {"high": {"open": 1}, "medium": {"open": 1}}
    assert sites["site-b"]["alerts"] == {"high": {"open": 1}}  # not the default study's
    assert [k["name"] for k in sites["site-a"]["kris"]][:1] == ["wear_time"]
    text = str(body)
    assert not any(p in text for p in [*at_a, at_b, elsewhere])
    # ...but never a participant's own data
    alert = (await monitoring.client.get("/v1/alerts", headers=sponsor)).status_code
    assert alert == 403

    # A site role sees its own sites only; another study is not there; a study without
    # the module says so.
    nurse = staff_auth("site-b", "site_staff", study=study)
    r = await monitoring.client.get(f"/v1/studies/{study}/summary", headers=nurse)
    assert [s["site_id"] for s in r.json()["sites"]] == ["site-b"]
    r = await monitoring.client.get(f"/v1/studies/{other}/summary", headers=sponsor)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_study")
    theirs = staff_auth(None, "sponsor", study=other)

    async def refused() -> bool:
        r = await monitoring.client.get(f"/v1/studies/{other}/summary", headers=theirs)
        return r.status_code == 409 and r.json()["error"]["code"] == "module_not_enabled"

    await eventually(refused)

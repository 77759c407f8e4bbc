"""KRIs per study on the real broker and PostgreSQL: a study's kri_limits (its file, from the
studies topic) judge its participants, the periodic evaluation pools each (study, site)
apart, and the default study keeps the settings' thresholds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import announce_study, eventually, migrate_as_released_before, read_topic, unique_id
from monitoring.rbm import kri_evaluation
from rbm_support import Rbm, now, rbm_service
from staff_tokens import staff_auth
from trialstream.db import migrate
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitStatus, VisitType

pytestmark = pytest.mark.integration

STUDY = "CARDIO-KRI"
# Looser than the settings' visit-window limits (amber 90, red 75): 50 % is green here.
LIMITS = [{"kri": "visit_window", "amber": 45.0, "red": 40.0}]


@pytest.fixture
async def rbm(kafka: str, database_url: str) -> AsyncIterator[Rbm]:
    # the loop's own passes stay out of the way: the test runs the evaluation itself
    async with rbm_service(kafka, database_url, kri_interval_seconds=3600) as service:
        yield service


async def enrol_in(rbm: Rbm, site: str, study: str) -> str:
    participant: str = await rbm.enrol(site, study_id=study)

    async def inbox_knows() -> object:  # the study is read from the inbox's participants
        return await rbm.pools[0].fetchval(
            "SELECT study_id FROM participants WHERE participant_id = $1", participant
        )

    assert await eventually(inbox_knows) == study
    return participant


async def visits(rbm: Rbm, participant: str, site: str, statuses: Sequence[VisitStatus]) -> None:
    t = now()
    window = (t - timedelta(days=10), t - timedelta(days=3))
    events = [
        VisitChanged(
            participant_id=participant,
            site_id=site,
            visit_id=uuid.uuid4(),
            visit_name=f"Visit {i}",
            visit_type=VisitType.VIDEO,
            status=status,
            window_start=window[0],
            window_end=window[1],
            starts_at=window[0] + timedelta(days=1) if status is VisitStatus.COMPLETED else None,
        )
        for i, status in enumerate(statuses)
    ]
    await rbm.publish(Topic.VISITS, [(participant, e) for e in events])

    async def stored() -> bool:
        n = await rbm.pools[0].fetchval(
            "SELECT count(*) FROM rbm_visits WHERE participant_id = $1", participant
        )
        return bool(n == len(events))

    await eventually(stored)


async def site_visit_window(rbm: Rbm, site: str, auth: dict[str, str]) -> dict[str, Any]:
    r = await rbm.client.get(f"/v1/sites/{site}/kris", headers=auth)
    assert r.status_code == 200, r.text
    (kri,) = [k for k in r.json()["kris"] if k["name"] == "visit_window"]
    return dict(kri)


async def test_study_kri_limits_judge_its_site_apart_from_the_default_study(rbm: Rbm) -> None:
    site = unique_id("site")  # a site of this id in the study and in the default study
    await announce_study(rbm.kafka, STUDY, ["monitoring", "epro"], [site], kri_limits=LIMITS)
    await eventually(lambda: _known(rbm, STUDY))
    ours = await enrol_in(rbm, site, STUDY)
    theirs = await enrol_in(rbm, site, "default")
    # ours 1 of 2 visits in window (50 %), theirs 0 of 2: pooled, the site would be 25 %,
    # red by the study's limits too
    await visits(rbm, ours, site, [VisitStatus.COMPLETED, VisitStatus.MISSED])
    await visits(rbm, theirs, site, [VisitStatus.MISSED, VisitStatus.MISSED])

    study_kri = await site_visit_window(rbm, site, staff_auth(site, "site_staff", study=STUDY))
    assert (study_kri["value"], study_kri["status"]) == (50.0, "green")
    assert study_kri["threshold"] == {
        "amber": 45.0,
        "red": 40.0,
        "direction": "below",
        "source": "study",
    }
    r = await rbm.client.get(
        f"/v1/participants/{ours}/kris", headers=staff_auth(site, "site_staff", study=STUDY)
    )
    assert r.status_code == 200, r.text
    (own,) = [k for k in r.json()["kris"] if k["name"] == "visit_window"]
    assert (own["status"], own["threshold"]["source"], r.json()["study_id"]) == (
        "green",
        "study",
        STUDY,
    )
    default_kri = await site_visit_window(rbm, site, staff_auth(site, "site_staff"))
    assert (default_kri["value"], default_kri["status"]) == (0.0, "red")
    assert default_kri["threshold"]["source"] == "settings"
    assert (default_kri["threshold"]["amber"], default_kri["threshold"]["red"]) == (90.0, 75.0)

    cfg, rules = rbm.settings.kri_config(), rbm.settings.flag_rules()
    assert await kri_evaluation.evaluate(rbm.pools[0], cfg, rules, rbm.studies) is not None
    states = await rbm.pools[0].fetch(
        "SELECT study_id, status, breach_open FROM rbm_kri_state"
        " WHERE scope = 'site' AND scope_id = $1 AND kri = 'visit_window' ORDER BY study_id",
        site,
    )
    assert [tuple(s) for s in states] == [(STUDY, "green", False), ("default", "red", True)]
    participant_states = await rbm.pools[0].fetch(
        "SELECT scope_id, study_id, status FROM rbm_kri_state"
        " WHERE scope = 'participant' AND kri = 'visit_window' AND site_id = $1"
        " ORDER BY study_id",
        site,
    )
    assert [tuple(s) for s in participant_states] == [
        (ours, STUDY, "green"),
        (theirs, "default", "red"),
    ]

    def at_site(v: dict[str, Any]) -> bool:
        return v.get("site_id") == site and v.get("kri") == "visit_window"

    # one site breach (the default study's, by the settings) and the default participant's
    events = await eventually(
        lambda: _at_least(2, read_topic(rbm.kafka, Topic.KRI_BREACHES, match=at_site))
    )
    assert sorted((e["scope"], e["participant_id"], e["threshold"]["red"]) for e in events) == [
        ("participant", theirs, 75.0),
        ("site", None, 75.0),
    ]
    assert {e["study_id"] for e in events} == {"default"}  # whose site breached


async def test_studies_without_monitoring_are_not_evaluated(rbm: Rbm) -> None:
    site = unique_id("site")
    await announce_study(rbm.kafka, "EPRO-ONLY", ["epro"], [site])
    await eventually(lambda: _known(rbm, "EPRO-ONLY"))
    skipped = await enrol_in(rbm, site, "EPRO-ONLY")
    await visits(rbm, skipped, site, [VisitStatus.MISSED])
    cfg, rules = rbm.settings.kri_config(), rbm.settings.flag_rules()
    assert await kri_evaluation.evaluate(rbm.pools[0], cfg, rules, rbm.studies) is not None
    rows = await rbm.pools[0].fetchval(
        "SELECT count(*) FROM rbm_kri_state WHERE site_id = $1", site
    )
    assert rows == 0


async def test_kri_state_from_before_studies_is_the_default_study_s(
    database_url: str, tmp_path: Path
) -> None:
    current = Path(str(files("monitoring") / "migrations"))
    first_new = "0042_kri_state_per_study.sql"
    await migrate_as_released_before(database_url, "monitoring", current, first_new, tmp_path)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "monitoring"})
    try:
        await conn.execute(
            "INSERT INTO rbm_kri_state (scope, scope_id, kri, site_id, status, breach_open)"
            " VALUES ('site', 'site-a', 'wear_time', 'site-a', 'red', true)"
        )
        await migrate(database_url, schema="monitoring", directories=[current])
        row = await conn.fetchrow("SELECT study_id, status, breach_open FROM rbm_kri_state")
        assert row is not None
        assert tuple(row) == ("default", "red", True)
        # the same site id in another study is an episode of its own
        await conn.execute(
            "INSERT INTO rbm_kri_state (study_id, scope, scope_id, kri, site_id)"
            " VALUES ('S-2', 'site', 'site-a', 'wear_time', 'site-a')"
        )
        with pytest.raises(asyncpg.NotNullViolationError):  # every row names its study
            await conn.execute(
                "INSERT INTO rbm_kri_state (scope, scope_id, kri, site_id)"
                " VALUES ('site', 'site-b', 'wear_time', 'site-b')"
            )
    finally:
        await conn.close()


async def _known(rbm: Rbm, study: str) -> bool:
    return rbm.studies.get(study) is not None


async def _at_least(n: int, found: Any) -> list[dict[str, Any]] | None:
    events: list[dict[str, Any]] = await found
    return events if len(events) >= n else None

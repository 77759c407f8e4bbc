"""A participant of a declared study gets the questionnaire schedules of the study file
(those ePRO can run; the others are skipped and shown to the study's admins); a new study
version's added schedules reach the participants enrolled before it; the default study
keeps the protocol file's schedules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from audit_helpers import audited
from epro.main import create_app
from epro_support import Epro, epro_settings
from helpers import announce_study, eventually, serving, unique_id
from staff_tokens import staff_auth

pytestmark = pytest.mark.integration

PROTOCOL = {"diary-daily", "phq9-biweekly", "gad7-weekly", "pain-sampling", "pain-after-visit"}
GAD_WEEKLY = {
    "schedule_id": "gad-weekly",
    "questionnaire_id": "gad-7",
    "questionnaire_version": 1,
    "rule": {"kind": "weekly", "weekday": 3, "at": "09:00", "window_minutes": 600},
}
NO_WEEKDAY = {
    "schedule_id": "phq-weekly",
    "questionnaire_id": "phq-9",
    "questionnaire_version": 1,
    "rule": {"kind": "weekly", "at": "09:00"},
}
NOT_PUBLISHED = {
    "schedule_id": "sleep-daily",
    "questionnaire_id": "sleep-diary",
    "questionnaire_version": 3,
    "rule": {"kind": "daily", "at": "07:30"},
}
PAIN_AFTER_ENROLMENT = {
    "schedule_id": "pain-day-3",
    "questionnaire_id": "pain-nrs",
    "questionnaire_version": 1,
    "rule": {"kind": "after_enrollment", "days": [3], "at": "18:00"},
}


@pytest.fixture
async def epro(kafka: str, database_url: str) -> AsyncIterator[Epro]:
    """ePRO giving new study versions to existing participants every half second."""
    settings = epro_settings(kafka, database_url).model_copy(
        update={"study_schedules_interval_seconds": 0.5}
    )
    async with serving(create_app(settings)) as client:
        yield Epro(client, kafka, database_url)


async def assigned(epro: Epro, participant: str) -> dict[str, dict[str, Any]]:
    rows = await epro.sql(
        "SELECT schedule_id, definition FROM assignments WHERE participant_id = $1", participant
    )
    return {r["schedule_id"]: json.loads(r["definition"]) for r in rows}


async def test_a_study_participant_gets_the_studys_schedules_and_default_ones_the_protocols(
    epro: Epro,
) -> None:
    study, site = unique_id("study"), unique_id("site")
    await announce_study(
        epro.kafka,
        study,
        ["ingest", "epro"],
        [site],
        questionnaires=[GAD_WEEKLY, NO_WEEKDAY, NOT_PUBLISHED],
    )
    ours, _ = await epro.enroll(site=site, study=study)
    theirs, _ = await epro.enroll()

    study_schedules = await assigned(epro, ours)
    assert set(study_schedules) == {"gad-weekly"}
    assert study_schedules["gad-weekly"]["rule"]["weekday"] == 3
    assert set(await assigned(epro, theirs)) == PROTOCOL

    # what was left out, and why, for the study's admins (and nobody else's)
    url = f"/v1/admin/study-schedules?study={study}"
    r = await epro.client.get(url, headers=staff_auth(None, "study_admin", study=study))
    assert r.status_code == 200, r.text
    view = r.json()
    assert [s["schedule_id"] for s in view["schedules"]] == ["gad-weekly"]
    assert [(s["schedule_id"], s["code"]) for s in view["skipped"]] == [
        ("phq-weekly", "rule_does_not_fit"),
        ("sleep-daily", "questionnaire_not_published"),
    ]
    assert "weekday" in view["skipped"][0]["reason"]
    metrics = (await epro.client.get("/metrics")).text
    assert f'epro_study_schedules_skipped{{study_id="{study}"}} 2.0' in metrics
    other = staff_auth(None, "study_admin", study=unique_id("study"))
    r = await epro.client.get(url, headers=other)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")


async def test_a_new_study_version_gives_its_added_schedules_to_participants_enrolled_before(
    epro: Epro,
) -> None:
    study, site = unique_id("study"), unique_id("site")
    modules = ["ingest", "epro"]
    await announce_study(epro.kafka, study, modules, [site], questionnaires=[GAD_WEEKLY])
    participant, _ = await epro.enroll(site=site, study=study)
    assert set(await assigned(epro, participant)) == {"gad-weekly"}

    added = [GAD_WEEKLY, PAIN_AFTER_ENROLMENT]
    await announce_study(epro.kafka, study, modules, [site], version=2, questionnaires=added)

    async def both() -> set[str] | None:
        found = set(await assigned(epro, participant))
        return found if found == {"gad-weekly", "pain-day-3"} else None

    await eventually(both)
    entries = await audited(epro.database_url, "epro", "schedule", f"{participant}/pain-day-3")
    assert [(e["action"], e["new"]["study_id"]) for e in entries] == [("schedule.assigned", study)]


async def test_a_study_admin_of_any_study_publishes_a_questionnaire_version(epro: Epro) -> None:
    definition = (await epro.client.get("/v1/questionnaires/pain-nrs/versions/1")).json()
    qid = unique_id("pain").lower()
    body = {**definition, "id": qid}
    admin = staff_auth(None, "study_admin", study=unique_id("study"))
    r = await epro.client.post("/v1/admin/questionnaires", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {f"{qid}@1": "published"}
    nurse = staff_auth("site-a", "site_staff")
    r = await epro.client.post("/v1/admin/questionnaires", json=body, headers=nurse)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")

"""Submitting responses from the app: validation, idempotency, corrections, outbox events."""

from __future__ import annotations

import pytest
from epro_support import Epro, phq9_body
from helpers import announce_study, eventually, read_topic, unique_id
from staff_tokens import staff_auth
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


async def test_valid_response_is_stored_scored_and_announced_once(epro: Epro) -> None:
    participant, app = await epro.enroll()
    body = phq9_body(1, 1, 2, 1, 0, 0, 0, 0, 0)
    r = await epro.submit(app, body)
    assert r.status_code == 201, r.text
    stored = r.json()["response"]
    assert stored["scores"] == {"phq9_total": {"value": 5, "band": "mild"}}
    assert (stored["participant_id"], stored["flags"], stored["on_time"]) == (
        participant,
        ["unscheduled"],
        True,
    )

    again = await epro.submit(app, body)
    assert again.status_code == 200
    assert again.json()["created"] is False
    events = await read_topic(
        epro.kafka,
        Topic.EPRO_RESPONSES,
        match=lambda v: v.get("response_id") == body["response_id"],
    )
    assert len(events) == 1
    assert (events[0]["participant_id"], events[0]["scores"]) == (participant, {"phq9_total": 5.0})
    assert "answers" not in events[0]  # answers stay in the service's database


async def test_reusing_a_response_id_for_other_answers_is_a_conflict(epro: Epro) -> None:
    _, app = await epro.enroll()
    body = phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert (await epro.submit(app, body)).status_code == 201
    other = {**body, "answers": {**body["answers"], "phq9-1": "1", "phq9-10": "very"}}
    r = await epro.submit(app, other)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "response_id_reused"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"answers": {"phq9-1": "0"}}, "answers.phq9-2", "required"),
        ({"questionnaire_id": "pain-nrs", "answers": {"pain": 11}}, "answers.pain", "out_of_range"),
        ({"answers": {**{f"phq9-{i}": "0" for i in range(1, 10)}, "phq9-10": "very"}}, "answers.phq9-10", "not_enabled"),
        ({"answers": {**{f"phq9-{i}": "0" for i in range(1, 10)}, "phq9-4": "often"}}, "answers.phq9-4", "unknown_option"),
        ({"questionnaire_version": 2}, "questionnaire_version", "unknown_questionnaire"),
        ({"language": "fr"}, "language", "unsupported_language"),
        ({"authored_at": "2099-01-01T00:00:00+00:00"}, "authored_at", "in_future"),
    ],
)  # fmt: skip
async def test_invalid_response_gets_a_field_level_422_and_nothing_is_stored(
    epro: Epro, change: dict[str, object], field: str, code: str
) -> None:
    _, app = await epro.enroll()
    body = {**phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0), **change}
    r = await epro.submit(app, body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_response"
    assert {"field": field, "code": code} in [
        {"field": d["field"], "code": d["code"]} for d in error["details"]
    ]
    assert (
        await epro.sql("SELECT 1 FROM responses WHERE response_id = $1::uuid", body["response_id"])
        == []
    )


async def test_malformed_body_gets_pydantic_field_errors(epro: Epro) -> None:
    _, app = await epro.enroll()
    r = await epro.submit(app, {"questionnaire_id": "phq-9", "answers": {}})
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {"response_id", "questionnaire_version", "authored_at"} <= fields


async def test_unknown_or_revoked_app_credential_is_refused(epro: Epro) -> None:
    participant, app = await epro.enroll()
    assert (
        await epro.submit(
            {"Authorization": "Bearer app_nope"}, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0)
        )
    ).status_code == 401
    r = await epro.client.post(
        f"/v1/admin/participants/{participant}/app-credentials/revoke", headers=epro.admin
    )
    assert r.json()["revoked"] == 1
    assert (await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))).status_code == 401


async def test_correction_is_a_new_version_and_the_old_value_stays_visible(epro: Epro) -> None:
    participant, app = await epro.enroll(site="site-c")
    nurse = await epro.staff("site-c")
    body = {**phq9_body(), "questionnaire_id": "pain-nrs", "answers": {"pain": 8}}
    assert (await epro.submit(app, body)).status_code == 201
    url = f"/v1/responses/{body['response_id']}/corrections"
    fix = {"based_on_version": 1, "reason": "tapped 8 instead of 3", "answers": {"pain": 3}}
    r = await epro.client.post(url, json=fix, headers=app)
    assert r.status_code == 201, r.text
    assert (
        r.json()["response"]["version"],
        r.json()["response"]["scores"]["pain_nrs"]["value"],
    ) == (2, 3)
    assert (await epro.client.post(url, json=fix, headers=app)).status_code == 200  # a retry
    stale = await epro.client.post(url, json={**fix, "answers": {"pain": 4}}, headers=app)
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "stale_version")
    no_reason = await epro.client.post(
        url, json={**fix, "based_on_version": 2, "reason": ""}, headers=app
    )
    assert no_reason.status_code == 422

    listed = (
        await epro.client.get(f"/v1/participants/{participant}/responses", headers=nurse)
    ).json()
    [entry] = listed["responses"]
    assert [(v["version"], v["answers"], v["reason"]) for v in entry["history"]] == [
        (1, {"pain": 8}, None),
        (2, {"pain": 3}, "tapped 8 instead of 3"),
    ]
    assert entry["current"]["version"] == 2
    events = await read_topic(
        epro.kafka,
        Topic.EPRO_RESPONSES,
        match=lambda v: v.get("response_id") == body["response_id"],
    )
    assert sorted(e["version"] for e in events) == [1, 2]


async def test_responses_table_refuses_updates_and_deletes(epro: Epro) -> None:
    _, app = await epro.enroll()
    body = phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert (await epro.submit(app, body)).status_code == 201
    with pytest.raises(Exception, match="append-only"):
        await epro.sql("UPDATE responses SET answers = '{}'::jsonb")
    with pytest.raises(Exception, match="append-only"):
        await epro.sql("DELETE FROM responses")


async def test_site_staff_can_correct_with_a_reason_and_are_recorded_as_author(epro: Epro) -> None:
    participant, app = await epro.enroll(site="site-s")
    nurse = await epro.staff("site-s")
    monitor, stranger = await epro.staff("site-s", "monitor"), await epro.staff("site-t")
    body = {**phq9_body(), "questionnaire_id": "pain-nrs", "answers": {"pain": 9}}
    assert (await epro.submit(app, body)).status_code == 201
    url = f"/v1/participants/{participant}/responses/{body['response_id']}/corrections"
    fix = {"based_on_version": 1, "reason": "participant phoned: meant 2", "answers": {"pain": 2}}
    assert (await epro.client.post(url, json=fix, headers=monitor)).status_code == 403
    assert (await epro.client.post(url, json=fix, headers=stranger)).status_code == 404
    r = await epro.client.post(url, json=fix, headers=nurse)
    assert r.status_code == 201, r.text
    stored = r.json()["response"]
    assert (stored["version"], stored["reason"], stored["author"].startswith("staff:nurse-")) == (
        2,
        "participant phoned: meant 2",
        True,
    )


async def test_staff_of_another_study_do_not_see_a_participant_at_a_site_of_the_same_name(
    epro: Epro,
) -> None:
    study = unique_id("STUDY-B")  # a study id of its own: the broker is shared
    await announce_study(epro.kafka, study, ["ingest", "epro"], ["site-s"])
    participant, app = await epro.enroll(site="site-s", study=study)
    body = {**phq9_body(), "questionnaire_id": "pain-nrs", "answers": {"pain": 3}}
    assert (await epro.submit(app, body)).status_code == 201
    [submitted] = await eventually(
        lambda: read_topic(
            epro.kafka, Topic.EPRO_RESPONSES, match=lambda v: v["participant_id"] == participant
        )
    )
    assert submitted["study_id"] == study  # the event names the participant's study
    ours = staff_auth("site-s", "site_staff", study=study)
    theirs = staff_auth("site-s", "site_staff", study="STUDY-A")
    url = f"/v1/participants/{participant}/responses"
    assert (await epro.client.get(url, headers=ours)).status_code == 200
    assert (await epro.client.get(url, headers=theirs)).status_code == 404
    credential = f"/v1/admin/participants/{participant}/app-credentials"
    r = await epro.client.post(credential, headers=theirs)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")

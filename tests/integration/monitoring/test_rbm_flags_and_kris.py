"""Risk-based monitoring on the real broker and PostgreSQL: discrepancy flags from the
streams, closing them, KRIs per site with site scoping, and breach events published once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from audit_helpers import audited
from helpers import eventually, fetchval, read_topic, unique_id
from monitoring.rbm import kri_evaluation
from prometheus_client import REGISTRY
from rbm_support import Rbm, now, rbm_service, reading, second_pool
from staff_tokens import staff_auth
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def rbm(kafka: str, database_url: str) -> AsyncIterator[Rbm]:
    async with rbm_service(kafka, database_url) as service:
        yield service


async def flag_events(rbm: Rbm, participant: str) -> list[dict[str, Any]]:
    return await read_topic(
        rbm.kafka, Topic.DISCREPANCY_FLAGS, match=lambda v: v.get("participant_id") == participant
    )


async def test_reading_measured_after_withdrawal_raises_one_flag(rbm: Rbm) -> None:
    site = unique_id("site")
    nurse = await rbm.staff(site)
    participant = await rbm.enrol(site)
    withdrawn = now() - timedelta(minutes=30)
    await rbm.publish(
        Topic.PARTICIPANTS,
        [
            (
                participant,
                ParticipantState(
                    participant_id=participant,
                    site_id=site,
                    status="withdrawn",
                    withdrawn_at=withdrawn,
                ),
            )
        ],
    )
    await eventually(lambda: rbm.known(participant, "withdrawn"))
    before = reading(participant, withdrawn - timedelta(minutes=5))
    after = reading(participant, withdrawn + timedelta(minutes=10))
    await rbm.readings([before])
    await rbm.readings([after, reading(participant, withdrawn + timedelta(minutes=11))])
    await rbm.readings([after])  # redelivered

    (flag,) = await eventually(lambda: rbm.flags(nurse))
    assert (flag["kind"], flag["participant_id"], flag["status"]) == (
        "reading-after-withdrawal",
        participant,
        "open",
    )
    assert flag["evidence"]["withdrawn_at"] == withdrawn.isoformat()
    assert flag["evidence"]["measured_at"] == after.measured_at.isoformat()
    assert "withdrew" in flag["reason"]
    events = await eventually(lambda: flag_events(rbm, participant))
    assert [(e["flag_id"], e["kind"], e["site_id"]) for e in events] == [
        (flag["flag_id"], "reading-after-withdrawal", site)
    ]


async def test_reading_that_arrived_before_the_withdrawal_event_is_flagged_by_it(
    rbm: Rbm,
) -> None:
    site = unique_id("site")
    nurse = await rbm.staff(site)
    participant = await rbm.enrol(site)
    withdrawn = now() - timedelta(minutes=30)
    late = reading(participant, withdrawn + timedelta(minutes=1))
    await rbm.readings([late])

    async def seen() -> bool:
        return bool(
            await rbm.pools[0].fetchval(
                "SELECT count(*) FROM rbm_devices WHERE participant_id = $1", participant
            )
        )

    await eventually(seen)
    await rbm.publish(
        Topic.PARTICIPANTS,
        [
            (
                participant,
                ParticipantState(
                    participant_id=participant,
                    site_id=site,
                    status="withdrawn",
                    withdrawn_at=withdrawn,
                ),
            )
        ],
    )
    (flag,) = await eventually(lambda: rbm.flags(nurse))
    assert flag["kind"] == "reading-after-withdrawal"
    assert flag["evidence"]["measured_at"] == late.measured_at.isoformat()


async def test_upload_from_a_clock_days_behind_raises_one_skew_flag(rbm: Rbm) -> None:
    site = unique_id("site")
    nurse = await rbm.staff(site)
    participant = await rbm.enrol(site)
    received = now()
    behind = [
        reading(participant, received - timedelta(hours=h), received=received) for h in (75, 72)
    ]
    backlog = [
        reading(participant, received - timedelta(hours=h), received=received + timedelta(1))
        for h in (60, 0.01)
    ]  # another upload whose newest reading is recent: a backlog, not a skew
    await rbm.readings(behind + backlog)
    await rbm.readings(behind)  # redelivered

    (flag,) = await eventually(lambda: rbm.flags(nurse))
    assert flag["kind"] == "device-clock-skew"
    assert flag["evidence"]["direction"] == "behind"
    assert flag["evidence"]["lag_hours"] == 72.0
    assert len(await eventually(lambda: flag_events(rbm, participant))) == 1


async def test_device_sending_for_two_participants_flags_both(rbm: Rbm) -> None:
    site_a, site_b = unique_id("site"), unique_id("site")
    nurse_a, nurse_b = await rbm.staff(site_a), await rbm.staff(site_b)
    first, second = await rbm.enrol(site_a), await rbm.enrol(site_b)
    device = unique_id("dev")
    t = now() - timedelta(minutes=10)
    await rbm.readings([reading(first, t, device=device)])
    await rbm.readings([reading(second, t + timedelta(minutes=1), device=device)])

    (flag_a,) = await eventually(lambda: rbm.flags(nurse_a))
    (flag_b,) = await eventually(lambda: rbm.flags(nurse_b))
    assert (flag_a["kind"], flag_a["participant_id"]) == ("shared-device", first)
    assert flag_b["participant_id"] == second
    assert flag_a["evidence"] == {"device_id": device, "participants": sorted([first, second])}


async def test_repeated_heart_rate_jumps_raise_an_implausible_jump_flag(rbm: Rbm) -> None:
    site = unique_id("site")
    nurse = await rbm.staff(site)
    participant = await rbm.enrol(site)
    t = now() - timedelta(minutes=30)
    values = [70, 130, 72, 135, 70, 71]  # three jumps > 40 beats/min within 20 s each
    batch = [reading(participant, t + timedelta(seconds=20 * i), v) for i, v in enumerate(values)]
    await rbm.readings(batch[:3])
    await rbm.readings(batch[3:])  # the third jump spans the batch boundary
    (flag,) = await eventually(lambda: rbm.flags(nurse))
    assert flag["kind"] == "implausible-jump"
    assert len(flag["evidence"]["jumps"]) >= 3


async def test_diary_reporting_no_activity_on_a_day_of_many_steps_is_flagged(rbm: Rbm) -> None:
    site = unique_id("site")
    nurse = await rbm.staff(site)
    participant = await rbm.enrol(site, timezone="Europe/Berlin")
    day = (now() - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    steps = [
        reading(participant, day + timedelta(minutes=i), 100, metric="step-count")
        for i in range(60)
    ]
    await rbm.readings(steps)
    response = ResponseSubmitted(
        participant_id=participant,
        response_id=uuid.uuid4(),
        questionnaire_id="daily-diary",
        questionnaire_version=2,
        submitted_at=day + timedelta(hours=11),
        on_time=True,
        scores={"activity_level": 0.0},
    )

    async def counted() -> bool:
        total = await rbm.pools[0].fetchval(
            "SELECT sum(sum) FROM reading_rollups WHERE participant_id = $1"
            " AND metric = 'step-count'",
            participant,
        )
        return bool(total == 6000)

    await eventually(counted)
    await rbm.publish(Topic.EPRO_RESPONSES, [(participant, response)])
    (flag,) = await eventually(lambda: rbm.flags(nurse))
    assert flag["kind"] == "epro-contradicts-wearable"
    assert (flag["evidence"]["steps"], flag["evidence"]["activity"]) == (6000.0, 0.0)


async def test_closing_a_flag_needs_site_staff_and_a_note_and_is_audited(rbm: Rbm) -> None:
    site = unique_id("site")
    nurse, other = await rbm.staff(site), await rbm.staff(unique_id("site"))
    monitor = await rbm.staff("cro", role="monitor")
    participant = await rbm.enrol(site)
    received = now()
    await rbm.readings([reading(participant, received - timedelta(days=3), received=received)])
    (flag,) = await eventually(lambda: rbm.flags(nurse))
    close = f"/v1/flags/{flag['flag_id']}/close"

    missing = await rbm.client.post(close, json={}, headers=nurse)
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["field"] == "note"
    blank = await rbm.client.post(close, json={"note": "   "}, headers=nurse)
    assert blank.status_code == 422
    by_monitor = await rbm.client.post(close, json={"note": "ok"}, headers=monitor)
    assert (by_monitor.status_code, by_monitor.json()["error"]["code"]) == (403, "role_not_allowed")
    by_other_site = await rbm.client.post(close, json={"note": "ok"}, headers=other)
    assert by_other_site.status_code == 404

    done = await rbm.client.post(close, json={"note": "device clock reset"}, headers=nurse)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["close_note"]) == ("closed", "device clock reset")
    assert body["closed_by"]
    assert body["closed_at"]
    again = await rbm.client.post(close, json={"note": "again"}, headers=nurse)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_closed")
    assert await rbm.flags(nurse) == []
    assert [f["flag_id"] for f in await rbm.flags(nurse, status="closed")] == [flag["flag_id"]]
    entries = await audited(rbm.database_url, "monitoring", "flag", str(flag["flag_id"]))
    assert [(e["action"], e["old"], e["new"]) for e in entries] == [
        ("flag.raised", None, "open"),  # raised by the system, audited with its reason
        ("flag.closed", "open", "closed"),
    ]
    assert entries[0]["actor"] == "system:rbm"
    # the note is staff's free text about a participant: off the chain (decision 0087)
    assert entries[1]["reason"].startswith("sha256:")
    text = "SELECT text FROM monitoring.audit_erasable_text WHERE seq = $1"
    assert await fetchval(rbm.database_url, text, entries[1]["seq"]) == "device clock reset"


async def test_site_kris_are_scoped_to_the_staff_site(rbm: Rbm) -> None:
    site, other_site = unique_id("site"), unique_id("site")
    nurse = await rbm.staff(site)
    monitor = await rbm.staff("cro", role="monitor")
    participant = await rbm.enrol(site)
    await rbm.enrol(other_site)

    own = await rbm.client.get(f"/v1/sites/{site}/kris", headers=nurse)
    assert own.status_code == 200, own.text
    body = own.json()
    assert set(body) == {"study_id", "site_id", "kris", "participants"}
    assert [p["participant_id"] for p in body["participants"]] == [participant]
    assert {k["name"] for k in body["kris"]} == {
        "wear_time",
        "epro_on_time",
        "visit_window",
        "ack_median",
        "dq_flag_rate",
    }
    assert all(
        set(k) == {"name", "label", "value", "unit", "threshold", "status"} for k in body["kris"]
    )
    assert body["study_id"] == "default"
    assert {k["threshold"]["source"] for k in body["kris"]} == {"settings"}
    cross = await rbm.client.get(f"/v1/sites/{other_site}/kris", headers=nurse)
    assert (cross.status_code, cross.json()["error"]["code"]) == (403, "forbidden_site")
    assert (
        await rbm.client.get(f"/v1/sites/{other_site}/kris", headers=monitor)
    ).status_code == 200
    cross_flags = await rbm.client.get("/v1/flags", params={"site": other_site}, headers=nurse)
    assert cross_flags.status_code == 403
    mine = await rbm.client.get(f"/v1/participants/{participant}/kris", headers=nurse)
    assert mine.status_code == 200
    assert mine.json()["participant_id"] == participant


async def test_one_participant_with_bad_stored_data_does_not_take_the_site_kris_down(
    rbm: Rbm,
) -> None:
    # A zone name stored before timezones were validated at the edge: ZoneInfo("Europe")
    # raises IsADirectoryError. The site's KRIs and the evaluation pass go on without them.
    site = unique_id("site")
    nurse = await rbm.staff(site)
    good, bad = await rbm.enrol(site), await rbm.enrol(site)
    await rbm.pools[0].execute(
        "UPDATE rbm_participants SET timezone = 'Europe' WHERE participant_id = $1", bad
    )
    r = await rbm.client.get(f"/v1/sites/{site}/kris", headers=nurse)
    assert r.status_code == 200, r.text
    assert [p["participant_id"] for p in r.json()["participants"]] == [good]
    before = _skipped("monitoring-kris")
    events = await kri_evaluation.evaluate(
        rbm.pools[0], rbm.settings.kri_config(), rbm.settings.flag_rules(), rbm.studies
    )
    assert events is not None  # the pass completed
    assert _skipped("monitoring-kris") > before


def _skipped(loop: str) -> float:
    value = REGISTRY.get_sample_value("trialstream_loop_items_skipped_total", {"loop": loop})
    return value or 0.0


async def test_kri_breach_is_published_once_across_two_replicas(
    kafka: str, database_url: str
) -> None:
    # The second replica is its evaluation (what decides breaches) on its own pool: a
    # second broker member of the same groups would hang the next test's group join on the
    # embedded broker (seen with two plain monitoring replicas too, RBM or not).
    async with (
        rbm_service(kafka, database_url, kri_interval_seconds=3600) as rbm,
        second_pool(database_url) as other,
    ):
        rbm.pools.append(other)
        site = unique_id("site")
        participant = await rbm.enrol(site)
        due = now() - timedelta(days=2)
        missed = QuestionnaireMissed(
            participant_id=participant,
            occurrence_id=uuid.uuid4(),
            questionnaire_id="daily-diary",
            questionnaire_version=1,
            due_at=due,
            expires_at=due + timedelta(hours=4),
        )
        await rbm.publish(Topic.EPRO_MISSED, [(participant, missed)])

        async def stored() -> bool:
            return bool(
                await rbm.pools[1].fetchval(
                    "SELECT count(*) FROM rbm_epro_occurrences WHERE participant_id = $1",
                    participant,
                )
            )

        await eventually(stored)
        cfg, rules = rbm.settings.kri_config(), rbm.settings.flag_rules()
        for _ in range(3):  # both replicas evaluating at once, three times over
            await asyncio.gather(
                *(kri_evaluation.evaluate(pool, cfg, rules, rbm.studies) for pool in rbm.pools * 2)
            )

        def mine(v: dict[str, Any]) -> bool:
            return v.get("participant_id") == participant and v.get("kri") == "epro_on_time"

        events = await eventually(lambda: read_topic(kafka, Topic.KRI_BREACHES, match=mine))
        assert [(e["status"], e["value"], "recovered_at" in e) for e in events] == [
            ("red", 0.0, False)
        ]
        answered = []
        for days in range(1, 10):  # nine on-time answers: 90 % on time, green again
            occurrence = uuid.uuid4()
            at = now() - timedelta(days=days, hours=1)
            answered.append(
                QuestionnaireDue(
                    participant_id=participant,
                    occurrence_id=occurrence,
                    questionnaire_id="pain-nrs",
                    questionnaire_version=1,
                    due_at=at,
                    expires_at=at + timedelta(hours=1),
                )
            )
            await rbm.publish(
                Topic.EPRO_RESPONSES,
                [
                    (
                        participant,
                        ResponseSubmitted(
                            participant_id=participant,
                            response_id=uuid.uuid4(),
                            questionnaire_id="pain-nrs",
                            questionnaire_version=1,
                            occurrence_id=occurrence,
                            submitted_at=at + timedelta(minutes=5),
                            on_time=True,
                        ),
                    )
                ],
            )
        await rbm.publish(Topic.EPRO_DUE, [(participant, e) for e in answered])

        async def all_answered() -> bool:
            n = await rbm.pools[0].fetchval(
                "SELECT count(*) FROM rbm_epro_occurrences WHERE participant_id = $1"
                " AND answered_on_time AND due_at IS NOT NULL",
                participant,
            )
            return bool(n == 9)

        await eventually(all_answered)
        for _ in range(2):
            await asyncio.gather(
                *(kri_evaluation.evaluate(pool, cfg, rules, rbm.studies) for pool in rbm.pools * 2)
            )
        events = await eventually(lambda: _two(read_topic(kafka, Topic.KRI_BREACHES, match=mine)))
        assert [(e["status"], "recovered_at" in e) for e in events] == [
            ("red", False),
            ("green", True),
        ]
        assert events[1]["breached_at"] == events[0]["breached_at"]


async def _two(found: Any) -> list[dict[str, Any]] | None:
    events: list[dict[str, Any]] = await found
    return events if len(events) >= 2 else None


async def test_participant_kris_come_from_visits_readings_alerts_and_flags(rbm: Rbm) -> None:
    from trialstream.events.alerts import AlertKind, AlertRaised, Severity
    from trialstream.events.visits import VisitChanged, VisitStatus, VisitType

    site = unique_id("site")
    nurse = await rbm.staff(site)
    participant = await rbm.enrol(site)
    t = now()
    window = (t - timedelta(days=10), t - timedelta(days=3))

    def visit(status: VisitStatus, starts: Any = None) -> VisitChanged:
        return VisitChanged(
            participant_id=participant,
            site_id=site,
            visit_id=uuid.uuid4(),
            visit_name="Day 7",
            visit_type=VisitType.VIDEO,
            status=status,
            window_start=window[0],
            window_end=window[1],
            starts_at=starts,
        )

    visits = [
        visit(VisitStatus.COMPLETED, window[0] + timedelta(days=1)),  # in window
        visit(VisitStatus.COMPLETED, window[1] + timedelta(days=1)),  # after it
        visit(VisitStatus.MISSED),
        visit(VisitStatus.SCHEDULED, window[0] + timedelta(days=2)),  # not decided
    ]
    await rbm.publish(Topic.VISITS, [(participant, v) for v in visits])
    alert = AlertRaised(
        participant_id=participant,
        kind=AlertKind.DEVICE_QUALITY,
        severity=Severity.LOW,
        rule="device-quality/dropout",
        detected_at=t,
        window_start=t,
        window_end=t,
        observed=[],
        model_version="test",
        explanation="no data",
    )
    await rbm.publish(Topic.ALERTS, [(participant, alert)])

    async def kri_values() -> dict[str, Any] | None:
        r = await rbm.client.get(f"/v1/participants/{participant}/kris", headers=nurse)
        assert r.status_code == 200, r.text
        values = {k["name"]: k["value"] for k in r.json()["kris"]}
        ready = values["visit_window"] is not None and values["ack_median"] is not None
        return values if ready else None

    values = await eventually(kri_values)
    assert values["visit_window"] == pytest.approx(33.33)
    assert values["ack_median"] is not None
    assert values["ack_median"] < 5  # still open: its age so far, in minutes
    assert values["dq_flag_rate"] == 1.0  # one device-quality alert over one participant-day
    assert values["epro_on_time"] is None
    site_view = (await rbm.client.get(f"/v1/sites/{site}/kris", headers=nurse)).json()
    by_name = {k["name"]: k for k in site_view["kris"]}
    assert by_name["visit_window"]["status"] == "red"
    assert by_name["visit_window"]["value"] == values["visit_window"]


async def test_flags_are_listed_and_closed_per_study(rbm: Rbm) -> None:
    site = unique_id("site")  # a site of this name in the default study and in STUDY-F
    ours = await rbm.enrol(site, study_id="STUDY-F")

    async def known_study() -> object:
        return await rbm.pools[0].fetchval(
            "SELECT study_id FROM participants WHERE participant_id = $1", ours
        )

    assert await eventually(known_study) == "STUDY-F"
    withdrawn = now() - timedelta(minutes=30)
    state = ParticipantState(
        participant_id=ours,
        site_id=site,
        study_id="STUDY-F",
        status="withdrawn",
        withdrawn_at=withdrawn,
    )
    await rbm.publish(Topic.PARTICIPANTS, [(ours, state)])
    await eventually(lambda: rbm.known(ours, "withdrawn"))
    await rbm.readings([reading(ours, withdrawn + timedelta(minutes=10))])
    study_nurse = staff_auth(site, "site_staff", study="STUDY-F")
    (flag,) = await eventually(lambda: rbm.flags(study_nurse))
    assert flag["participant_id"] == ours
    default_nurse = staff_auth(site, "site_staff")
    assert await rbm.flags(default_nurse) == []
    url = f"/v1/flags/{flag['flag_id']}/close"
    r = await rbm.client.post(url, json={"note": "not mine"}, headers=default_nurse)
    assert r.status_code == 404
    r = await rbm.client.post(
        url, json={"note": "watch worn after withdrawal"}, headers=study_nurse
    )
    assert r.status_code == 200, r.text
    # The site's KRIs pool only the study's participants.
    for auth, expected in ((study_nurse, [ours]), (default_nurse, [])):
        r = await rbm.client.get(f"/v1/sites/{site}/kris", headers=auth)
        assert r.status_code == 200, r.text
        assert [p["participant_id"] for p in r.json()["participants"]] == expected

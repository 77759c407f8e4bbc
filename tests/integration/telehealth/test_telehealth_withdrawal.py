"""Withdrawal on the real broker and database (decision 0025): future bookings cancelled
and published, no new booking, no reminder, no urgent proposal; history stays readable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from audit_helpers import audited
from helpers import eventually, read_topic
from telehealth.service import scheduler
from telehealth_harness import T0, Telehealth
from test_telehealth_urgent_and_reminders import alert, proposals
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
WITHDREW = "participant withdrew"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def withdrawal(th: Telehealth, participant: str, at: datetime) -> ParticipantState:
    return ParticipantState(
        participant_id=participant,
        site_id=th.site,
        timezone="Europe/Berlin",
        status="withdrawn",
        withdrawn_at=at,
        occurred_at=at,
    )


async def withdraw(th: Telehealth, participant: str, at: datetime) -> None:
    await th.publish(Topic.PARTICIPANTS, [(participant, withdrawal(th, participant, at))])


async def withdrawn(th: Telehealth, participant: str, auth: dict[str, str]) -> dict[str, Any]:
    """The participant's visits page once telehealth has recorded the withdrawal."""

    async def seen() -> dict[str, Any] | None:
        r = await th.client.get(f"/v1/participants/{participant}/visits", headers=auth)
        body: dict[str, Any] = r.json()
        return body if r.status_code == 200 and body["withdrawn_at"] else None

    return await eventually(seen)


async def test_withdrawal_cancels_and_publishes_future_bookings_of_that_participant_only(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    leaving, staying = await telehealth.enrol(count=2)
    day1 = await telehealth.visit(leaving, auth, "Day 1")
    before = await telehealth.book(auth, day1["visit_id"], staff_id, utc(2030, 1, 7, 8))
    day7 = await telehealth.visit(leaving, auth, "Day 7")
    after = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    other7 = await telehealth.visit(staying, auth, "Day 7")
    other = await telehealth.book(auth, other7["visit_id"], staff_id, utc(2030, 1, 12, 8, 30))
    assert [r.status_code for r in (before, after, other)] == [201, 201, 201]

    telehealth.clock.now = utc(2030, 1, 8, 10)
    await withdraw(telehealth, leaving, utc(2030, 1, 8, 9))
    page = await withdrawn(telehealth, leaving, auth)

    assert page["withdrawn_at"] == "2030-01-08T09:00:00Z"
    assert [(v["name"], v["status"], v["cancel_reason"]) for v in page["visits"]] == [
        ("Day 1", "booked", None),  # booked before the withdrawal: history, left to staff
        ("Day 7", "cancelled", WITHDREW),
        ("Day 28", "cancelled", WITHDREW),  # open, cut short
    ]
    cancelled = await telehealth.client.get(
        f"/v1/bookings/{after.json()['booking_id']}", headers=auth
    )
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == ("cancelled", WITHDREW)
    kept = await telehealth.client.get(f"/v1/bookings/{other.json()['booking_id']}", headers=auth)
    assert kept.json()["status"] == "booked"
    assert [v["status"] for v in await telehealth.visits(staying, auth)] == [
        "open",
        "booked",
        "open",
    ]

    events = await read_topic(
        telehealth.kafka,
        Topic.VISITS,
        match=lambda v: v.get("status") == "cancelled",
    )
    assert [(e["participant_id"], e["booking_id"], e["reason"]) for e in events] == [
        (leaving, after.json()["booking_id"], WITHDREW)
    ]
    entries = await audited(
        telehealth.database_url, "telehealth", "booking", after.json()["booking_id"]
    )
    assert [(e["actor"], e["action"], e["reason"]) for e in entries][-1] == (
        "system:telehealth",
        "booking.cancelled",
        WITHDREW,
    )
    # No reminder for the cancelled booking; the other participant is still reminded.
    pool = telehealth.app.state.context.pool
    assert (await scheduler.tick(pool, utc(2030, 1, 11, 8, 30)))[0] == 1
    reminded = await read_topic(
        telehealth.kafka, Topic.VISIT_REMINDERS, match=lambda v: v.get("lead") == "24h"
    )
    assert [r["participant_id"] for r in reminded] == [staying]


async def test_a_redelivered_or_later_withdrawal_and_a_later_enrolment_change_nothing(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    booked = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert booked.status_code == 201, booked.text
    await withdraw(telehealth, participant, utc(2030, 1, 8, 9))
    await withdrawn(telehealth, participant, auth)
    later = [
        withdrawal(telehealth, participant, utc(2030, 1, 8, 9)),  # a re-statement
        withdrawal(telehealth, participant, utc(2030, 1, 9, 9)),
        ParticipantState(participant_id=participant, site_id=telehealth.site),
    ]
    await telehealth.publish(Topic.PARTICIPANTS, [(participant, e) for e in later])

    async def handled() -> bool:
        done = await telehealth.sql(
            "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])",
            [e.event_id for e in later],
        )
        return bool(done == len(later))

    assert await eventually(handled)

    page = await withdrawn(telehealth, participant, auth)
    assert page["withdrawn_at"] == "2030-01-08T09:00:00Z"
    stopped = await audited(telehealth.database_url, "telehealth", "participant", participant)
    assert [e["action"] for e in stopped] == ["visits.planned", "visits.stopped_by_withdrawal"]
    events = await read_topic(
        telehealth.kafka,
        Topic.VISITS,
        match=lambda v: v.get("booking_id") == booked.json()["booking_id"],
    )
    assert [e["status"] for e in events] == ["scheduled", "cancelled"]


async def test_no_booking_can_be_made_for_a_withdrawn_participant(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    await withdraw(telehealth, participant, T0)
    await withdrawn(telehealth, participant, auth)
    # A later `enrolled` record (a replay, a re-statement) does not lift the withdrawal.
    restated = ParticipantState(participant_id=participant, site_id=telehealth.site)
    await telehealth.publish(Topic.PARTICIPANTS, [(participant, restated)])

    async def handled() -> bool:
        done = await telehealth.sql(
            "SELECT count(*) FROM inbox WHERE event_id = $1", restated.event_id
        )
        return bool(done == 1)

    assert await eventually(handled)  # applied before the booking is tried

    refused = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "participant_withdrawn"
    assert "2030-01-07T06:00:00+00:00" in error["message"]
    slots = await telehealth.client.get(f"/v1/participants/{participant}/slots", headers=auth)
    assert (slots.status_code, slots.json()["error"]["code"]) == (409, "participant_withdrawn")
    stored = await telehealth.sql(
        "SELECT count(*) FROM bookings b JOIN visits v USING (visit_id)"
        " WHERE v.participant_id = $1",
        participant,
    )
    assert stored == 0


async def test_alert_after_withdrawal_proposes_nothing_and_a_pending_proposal_is_dismissed(
    telehealth: Telehealth,
) -> None:
    _, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    await telehealth.visits(participant, auth)
    await telehealth.publish(Topic.ALERTS, [(participant, alert(participant))])
    (pending,) = await eventually(lambda: proposals(telehealth, auth))

    await withdraw(telehealth, participant, T0)
    await withdrawn(telehealth, participant, auth)
    late = alert(participant)  # e.g. for a reading measured before the withdrawal
    await telehealth.publish(Topic.ALERTS, [(participant, late)])

    async def late_handled() -> bool:
        outcome: str | None = await telehealth.sql(
            "SELECT outcome FROM urgent_alerts WHERE alert_id = $1", late.event_id
        )
        return outcome == "participant_withdrawn"

    assert await eventually(late_handled)
    listed = await proposals(telehealth, auth, "all")
    assert [(p["booking_id"], p["status"], p["reason"]) for p in listed] == [
        (pending["booking_id"], "dismissed", WITHDREW)
    ]
    letters = await read_topic(
        telehealth.kafka, Topic.DEAD_LETTER, match=lambda v: v.get("key") == participant
    )
    assert letters == []


async def test_scheduler_does_not_remind_a_withdrawn_participant_of_a_booking_left_behind(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    booked = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert booked.status_code == 201, booked.text
    # A booking a race (or a bug) left booked after the withdrawal was recorded.
    await telehealth.sql(
        "UPDATE participants SET withdrawn_at = $2 WHERE participant_id = $1",
        participant,
        utc(2030, 1, 8, 9),
    )
    pool = telehealth.app.state.context.pool
    assert await scheduler.tick(pool, utc(2030, 1, 11, 8)) == (0, 1)  # no 24 h; Day 1 missed
    assert await scheduler.tick(pool, utc(2030, 1, 12, 7)) == (0, 0)  # no 1 h reminder
    # Day 1's window closed before the withdrawal: missed while consenting. Day 28 was still
    # open at the withdrawal: never reported missed.
    assert await scheduler.tick(pool, utc(2030, 2, 10)) == (0, 1)  # Day 7, its slot passed
    statuses = {v["name"]: v["status"] for v in await telehealth.visits(participant, auth)}
    assert statuses == {"Day 1": "missed", "Day 7": "missed", "Day 28": "open"}


async def test_a_no_show_after_withdrawal_closes_the_visit_instead_of_reopening_it(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day1 = await telehealth.visit(participant, auth, "Day 1")
    booked = await telehealth.book(auth, day1["visit_id"], staff_id, utc(2030, 1, 7, 8))
    assert booked.status_code == 201, booked.text

    # Withdrawn after the visit started, while its window still runs: the booking stays
    # (history, for staff to close) ...
    telehealth.clock.now = utc(2030, 1, 7, 10)
    await withdraw(telehealth, participant, utc(2030, 1, 7, 9))
    await withdrawn(telehealth, participant, auth)
    # ... and when staff record the no-show, the visit cannot go back to open: nobody may
    # book it again, and the scheduler would never count it missed.
    telehealth.clock.now = utc(2030, 1, 7, 11)
    r = await telehealth.client.post(
        f"/v1/bookings/{booked.json()['booking_id']}/no-show",
        json={"note": "did not join"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    visit = await telehealth.visit(participant, auth, "Day 1")
    assert (visit["status"], visit["cancel_reason"]) == ("cancelled", WITHDREW)

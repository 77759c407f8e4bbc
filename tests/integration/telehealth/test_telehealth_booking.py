"""Booking, its lifecycle and the no-double-booking guarantee on the real broker and database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from helpers import read_topic
from telehealth_harness import VIDEO_BASE, Telehealth
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def test_booking_a_video_visit_gives_room_link_and_scheduled_event(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    r = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["room_url"].startswith(f"{VIDEO_BASE}/")
    assert len(booking["room_url"].rsplit("/", 1)[1]) >= 32  # 24 random bytes, url-safe
    assert "room_token" not in booking
    assert (await telehealth.visit(participant, auth, "Day 7"))["status"] == "booked"
    events = await read_topic(
        telehealth.kafka, Topic.VISITS, match=lambda v: v.get("booking_id") == booking["booking_id"]
    )
    assert [(e["status"], e["visit_name"], e["starts_at"]) for e in events] == [
        ("scheduled", "Day 7", "2030-01-12T08:00:00Z")
    ]
    again = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 13, 8))
    assert (again.status_code, again.json()["error"]["code"]) == (409, "visit_not_bookable")


async def test_booking_outside_window_needs_an_accepted_deviation_reason(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    late = utc(2030, 1, 16, 8)  # Day 10, one day after the window
    refused = await telehealth.book(auth, day7["visit_id"], staff_id, late)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "outside_window"
    assert error["details"][0]["field"] == "starts_at"
    assert error["details"][0]["window_end"] == "2030-01-15T23:00:00+00:00"
    accepted = await telehealth.book(
        auth, day7["visit_id"], staff_id, late, deviation_reason="participant travelling, PI agreed"
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["deviation_reason"] == "participant travelling, PI agreed"


async def test_only_offered_future_slots_can_be_booked(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    odd = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8, 10))
    assert (odd.status_code, odd.json()["error"]["code"]) == (422, "not_an_available_slot")
    night = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 2))
    assert night.json()["error"]["code"] == "not_an_available_slot"
    telehealth.clock.now = utc(2030, 1, 12, 9)
    past = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert (past.status_code, past.json()["error"]["code"]) == (422, "in_the_past")


async def test_many_simultaneous_bookings_of_one_slot_exactly_one_wins(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    participants = await telehealth.enrol(count=24)
    visits = [await telehealth.visit(p, auth, "Day 7") for p in participants]
    slot = utc(2030, 1, 12, 9)
    responses = await asyncio.gather(
        *(telehealth.book(auth, v["visit_id"], staff_id, slot) for v in visits)
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 23
    losers = [r.json()["error"] for r in responses if r.status_code == 409]
    assert {e["code"] for e in losers} == {"slot_taken"}
    assert all("already booked at 2030-01-12T09:00:00+00:00" in e["message"] for e in losers)
    live = await telehealth.sql(
        "SELECT count(*) FROM bookings WHERE staff_id = $1 AND status = 'booked'", staff_id
    )
    assert live == 1
    booked = await telehealth.sql("SELECT count(*) FROM visits WHERE status = 'booked'")
    assert booked == 1  # the losers' visits stay open


async def test_reschedule_and_cancel_need_a_reason_and_emit_events(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    first, second = await telehealth.enrol(count=2)
    day7 = await telehealth.visit(first, auth, "Day 7")
    other = await telehealth.visit(second, auth, "Day 7")
    booking = (await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))).json()
    assert (
        await telehealth.book(auth, other["visit_id"], staff_id, utc(2030, 1, 13, 8))
    ).status_code == 201
    url = f"/v1/bookings/{booking['booking_id']}"

    no_reason = await telehealth.client.post(
        f"{url}/reschedule", json={"starts_at": "2030-01-13T08:30:00Z"}, headers=auth
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["details"][0]["field"] == "reason"
    taken = await telehealth.client.post(
        f"{url}/reschedule",
        json={"starts_at": "2030-01-13T08:00:00Z", "reason": "clash"},
        headers=auth,
    )
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "slot_taken")
    moved = await telehealth.client.post(
        f"{url}/reschedule",
        json={"starts_at": "2030-01-13T08:30:00Z", "reason": "work shift"},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["starts_at"], moved.json()["reason"]) == (
        "2030-01-13T08:30:00Z",
        "work shift",
    )

    cancelled = await telehealth.client.post(
        f"{url}/cancel", json={"reason": "feeling unwell"}, headers=auth
    )
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (await telehealth.visit(first, auth, "Day 7"))["status"] == "open"
    rebooked = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 13, 8, 30))
    assert rebooked.status_code == 201, rebooked.text

    events = await read_topic(
        telehealth.kafka, Topic.VISITS, match=lambda v: v.get("booking_id") == booking["booking_id"]
    )
    # Staff's reasons stay in telehealth (the booking, its audit): not on the visits topic.
    assert [(e["status"], e["reason"]) for e in events] == [
        ("scheduled", None),
        ("rescheduled", None),
        ("cancelled", None),
    ]


async def test_complete_and_no_show_only_after_the_visit_started(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    first, second = await telehealth.enrol(count=2)
    a = (
        await telehealth.book(
            auth,
            (await telehealth.visit(first, auth, "Day 7"))["visit_id"],
            staff_id,
            utc(2030, 1, 12, 8),
        )
    ).json()
    b = (
        await telehealth.book(
            auth,
            (await telehealth.visit(second, auth, "Day 7"))["visit_id"],
            staff_id,
            utc(2030, 1, 12, 9),
        )
    ).json()
    early = await telehealth.client.post(
        f"/v1/bookings/{a['booking_id']}/complete", json={}, headers=auth
    )
    assert (early.status_code, early.json()["error"]["code"]) == (409, "not_started")
    telehealth.clock.now = utc(2030, 1, 12, 10)
    done = await telehealth.client.post(
        f"/v1/bookings/{a['booking_id']}/complete", json={}, headers=auth
    )
    assert done.json()["status"] == "completed"
    absent = await telehealth.client.post(
        f"/v1/bookings/{b['booking_id']}/no-show", json={"note": "no answer"}, headers=auth
    )
    assert absent.json()["status"] == "no-show"
    assert (await telehealth.visit(first, auth, "Day 7"))["status"] == "completed"
    assert (await telehealth.visit(second, auth, "Day 7"))["status"] == "open"  # can be rebooked
    twice = await telehealth.client.post(
        f"/v1/bookings/{a['booking_id']}/cancel", json={"reason": "oops"}, headers=auth
    )
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "invalid_transition")


async def test_staff_of_another_site_cannot_see_or_book_a_participant(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    _, stranger = await telehealth.staff(site="other-site")
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    r = await telehealth.client.get(f"/v1/participants/{participant}/visits", headers=stranger)
    assert r.status_code == 404
    r = await telehealth.book(stranger, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_visit")
    r = await telehealth.client.get(
        f"/v1/sites/{telehealth.site}/schedule", params={"on": "2030-01-12"}, headers=stranger
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    r = await telehealth.client.get("/v1/proposals", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


async def test_invalid_booking_body_gets_field_level_errors(telehealth: Telehealth) -> None:
    _, auth = await telehealth.staff()
    r = await telehealth.client.post(
        "/v1/bookings",
        json={"visit_id": "nope", "staff_id": "x y", "starts_at": "2030-01-12T08:00:00"},
        headers=auth,
    )
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert fields == {"visit_id", "staff_id", "starts_at"}  # starts_at lacks a timezone

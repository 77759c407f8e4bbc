"""iCalendar feeds per staff member and participant, served from the real database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from telehealth_harness import Telehealth

pytestmark = pytest.mark.integration


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def test_calendar_feeds_for_staff_and_participant(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    booking = (await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))).json()

    async def feed(body: dict[str, str]) -> str:
        r = await telehealth.client.post("/v1/calendar-feeds", json=body, headers=auth)
        assert r.status_code == 201, r.text
        path = r.json()["url"].split("127.0.0.1:8005", 1)[1]
        ics = await telehealth.client.get(path)  # no bearer header: calendar apps cannot send one
        assert ics.status_code == 200
        assert ics.headers["content-type"].startswith("text/calendar")
        return ics.text

    staff_ics = await feed({"staff_id": staff_id})
    participant_ics = await feed({"participant_id": participant})
    for ics in (staff_ics, participant_ics):
        assert ics.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
        assert f"UID:{booking['booking_id']}@telehealth.trialstream\r\n" in ics
        assert "DTSTART:20300112T080000Z\r\nDTEND:20300112T083000Z\r\n" in ics
        assert f"URL:{booking['room_url']}\r\n" in ics.replace("\r\n ", "")
    assert "SEQUENCE:0\r\n" in staff_ics
    assert f"with {participant}" in staff_ics
    assert participant not in participant_ics.split("SUMMARY:", 1)[1].split("\r\n", 1)[0]
    moved = await telehealth.client.post(
        f"/v1/bookings/{booking['booking_id']}/reschedule",
        json={"starts_at": "2030-01-13T08:00:00Z", "reason": "clinic closed"},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    updated = await feed({"staff_id": staff_id})
    assert "DTSTART:20300113T080000Z\r\n" in updated
    assert "SEQUENCE:1\r\n" in updated
    unknown = await telehealth.client.get("/v1/calendars/cal_nope.ics")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_feed")
    both = await telehealth.client.post(
        "/v1/calendar-feeds",
        json={"staff_id": staff_id, "participant_id": participant},
        headers=auth,
    )
    assert both.status_code == 422

"""Visit windows, slots across DST, baselines and site schedules on the real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from telehealth_harness import Telehealth

pytestmark = pytest.mark.integration


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def test_enrolment_plans_protocol_visits_in_participant_local_days(
    telehealth: Telehealth,
) -> None:
    _, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    visits = await telehealth.visits(participant, auth)
    assert [(v["name"], v["visit_type"], v["status"]) for v in visits] == [
        ("Day 1", "site", "open"),
        ("Day 7", "video", "open"),
        ("Day 28", "video", "open"),
    ]
    day7 = visits[1]
    # Baseline Monday 7 Jan 2030 (Berlin); Day 7 +/- 2 = 11-15 Jan, local midnights.
    assert (day7["window_start"], day7["window_end"]) == (
        "2030-01-10T23:00:00Z",
        "2030-01-15T23:00:00Z",
    )


async def test_slots_for_next_visit_lie_in_its_window_shown_in_participant_timezone(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol(timezone="America/New_York")
    await telehealth.visits(participant, auth)
    r = await telehealth.client.get(f"/v1/participants/{participant}/slots", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["visit"]["name"] == "Day 1"
    # Day 1 in New York is 7 Jan 05:00Z - 8 Jan 05:00Z; staff work 09-12 Berlin (08-11Z) on 7 Jan;
    # on 8 Jan those hours are after the window closes.
    assert [s["starts_at"] for s in body["slots"]] == [
        f"2030-01-07T{h:02d}:{m:02d}:00Z" for h in (8, 9, 10) for m in (0, 30)
    ]
    assert body["slots"][0]["local_start"] == "2030-01-07T03:00:00-05:00"
    assert {s["staff_id"] for s in body["slots"]} == {staff_id}


async def test_site_schedule_lists_a_day_or_week_in_site_time(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    first, second = await telehealth.enrol(count=2)
    for participant, start in ((first, utc(2030, 1, 12, 8)), (second, utc(2030, 1, 14, 10))):
        visit = await telehealth.visit(participant, auth, "Day 7")
        assert (await telehealth.book(auth, visit["visit_id"], staff_id, start)).status_code == 201
    url = f"/v1/sites/{telehealth.site}/schedule"
    day = (await telehealth.client.get(url, params={"on": "2030-01-12"}, headers=auth)).json()
    assert [(b["participant_id"], b["local_start"]) for b in day["bookings"]] == [
        (first, "2030-01-12T09:00:00+01:00")
    ]
    week = (
        await telehealth.client.get(url, params={"on": "2030-01-12", "span": "week"}, headers=auth)
    ).json()
    assert (week["from"], week["until"]) == ("2030-01-06T23:00:00Z", "2030-01-13T23:00:00Z")
    assert [b["participant_id"] for b in week["bookings"]] == [first]  # 14 Jan is next week
    next_week = (
        await telehealth.client.get(url, params={"on": "2030-01-14", "span": "week"}, headers=auth)
    ).json()
    assert [b["participant_id"] for b in next_week["bookings"]] == [second]
    last = await telehealth.client.get(url, params={"on": "9999-12-31"}, headers=auth)
    assert last.status_code == 422, last.text
    assert last.json()["error"]["details"][0]["code"] == "date_out_of_range"


async def test_baseline_moves_windows_until_a_visit_is_booked(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    await telehealth.visits(participant, auth)
    url = f"/v1/participants/{participant}/baseline"
    r = await telehealth.client.put(url, json={"baseline_date": "2030-01-09"}, headers=auth)
    assert r.status_code == 200, r.text
    day7 = next(v for v in r.json()["visits"] if v["name"] == "Day 7")
    assert day7["window_start"] == "2030-01-12T23:00:00Z"  # Day 5 = 13 Jan, Berlin midnight
    assert (
        await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 14, 8))
    ).status_code == 201
    r = await telehealth.client.put(url, json={"baseline_date": "2030-01-20"}, headers=auth)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "schedule_in_progress")
    bad = await telehealth.client.put(url, json={"baseline_date": "soon"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "baseline_date"
    # A date past the span a trial runs in is a 422 on the field, not a 500 from the
    # windows computed after it (9999-12-31 + 28 days overflows).
    far = await telehealth.client.put(url, json={"baseline_date": "9999-12-31"}, headers=auth)
    assert far.status_code == 422, far.text
    assert [(d["field"], d["code"]) for d in far.json()["error"]["details"]] == [
        ("baseline_date", "date_out_of_range")
    ]


async def test_weekly_hours_follow_site_clock_across_new_york_dst_switch(
    telehealth: Telehealth,
) -> None:
    r = await telehealth.admin(
        "PUT", f"/v1/admin/sites/{telehealth.site}", {"timezone": "America/New_York"}
    )
    assert r.status_code == 200
    staff_id, auth = await telehealth.staff(hours="09:00-10:00")
    telehealth.clock.now = utc(2030, 3, 4, 12)
    (participant,) = await telehealth.enrol(
        timezone="America/New_York", enrolled_at=utc(2030, 3, 4, 12)
    )
    day1 = await telehealth.visit(participant, auth, "Day 1")
    day7 = await telehealth.visit(participant, auth, "Day 7")
    visit_id = day7["visit_id"]
    assert (day7["window_start"], day7["window_end"]) == (
        "2030-03-08T05:00:00Z",
        "2030-03-13T04:00:00Z",
    )
    url = f"/v1/participants/{participant}/slots"
    assert (await telehealth.client.get(url, headers=auth)).json()["visit"]["visit_id"] == day1[
        "visit_id"
    ]
    r = await telehealth.client.get(url, params={"visit_id": visit_id}, headers=auth)
    slots = [s["starts_at"] for s in r.json()["slots"] if s["staff_id"] == staff_id]
    # 09:00-09:30 and 09:30-10:00 local: 14:00Z under EST, 13:00Z from Sunday 10 March (EDT).
    assert [s[:16] for s in slots[::2]] == [
        "2030-03-08T14:00",
        "2030-03-09T14:00",
        "2030-03-10T13:00",
        "2030-03-11T13:00",
        "2030-03-12T13:00",
    ]
    booked = await telehealth.book(auth, visit_id, staff_id, utc(2030, 3, 10, 13))
    assert booked.status_code == 201, booked.text
    wrong = await telehealth.book(
        auth,
        day1["visit_id"],
        staff_id,
        utc(2030, 3, 10, 14),
        deviation_reason="test the old offset",
    )
    assert wrong.json()["error"]["code"] == "not_an_available_slot"


async def test_a_day_off_removes_slots_until_the_exception_is_deleted(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    participant, other = await telehealth.enrol(count=2)
    day7 = await telehealth.visit(participant, auth, "Day 7")
    url = f"/v1/participants/{participant}/slots"

    async def days() -> list[str]:
        r = await telehealth.client.get(url, params={"visit_id": day7["visit_id"]}, headers=auth)
        return sorted({s["starts_at"][:10] for s in r.json()["slots"]})

    assert await days() == [f"2030-01-{d}" for d in range(11, 16)]
    exception = f"/v1/staff/{staff_id}/exceptions/2030-01-12"
    r = await telehealth.client.put(exception, json={"hours": []}, headers=auth)
    assert r.status_code == 200, r.text
    assert "2030-01-12" not in await days()
    off = await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert off.json()["error"]["code"] == "not_an_available_slot"
    r = await telehealth.client.put(
        exception, json={"hours": [{"start": "14:00", "end": "15:00"}]}, headers=auth
    )
    assert r.status_code == 200
    assert (
        await telehealth.book(auth, day7["visit_id"], staff_id, utc(2030, 1, 12, 13))
    ).status_code == 201
    assert (await telehealth.client.delete(exception, headers=auth)).status_code == 200
    other_day7 = await telehealth.visit(other, auth, "Day 7")
    back = await telehealth.book(auth, other_day7["visit_id"], staff_id, utc(2030, 1, 12, 8))
    assert back.status_code == 201, back.text  # weekly hours again

"""A declared study's visits and site clocks come from its study file (announced on the
studies topic), fixed at enrolment; the default study keeps TELEHEALTH_PROTOCOL and the
admin-set site timezone. Real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from audit_helpers import audited
from helpers import announce_study, eventually, read_topic, unique_id
from staff_tokens import staff_auth
from telehealth.context import Context
from telehealth_harness import Telehealth
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Role

pytestmark = pytest.mark.integration
SCREENING = {"name": "Screening", "day": 1, "type": "site"}
WEEK_2 = {"name": "Week 2", "day": 14, "minus_days": 1, "plus_days": 1, "type": "home"}


async def _answer(telehealth: Telehealth, participant: str, auth: dict[str, str]) -> Any:
    """The participant's schedule answer, once the enrolment has been consumed."""

    async def ready() -> httpx.Response | None:
        r = await telehealth.client.get(f"/v1/participants/{participant}/visits", headers=auth)
        return r if r.status_code == 200 else None

    return (await eventually(ready)).json()


async def _study_version_read(telehealth: Telehealth, study: str, visit_names: list[str]) -> None:
    ctx: Context = telehealth.app.state.context

    async def read() -> bool:
        found = ctx.runtime.studies.get(study)
        return found is not None and [v.name for v in found.visits] == visit_names

    await eventually(read)


async def test_a_declared_study_plans_its_visits_on_its_site_clock_and_default_keeps_settings(
    telehealth: Telehealth,
) -> None:
    study, site = unique_id("STUDY"), unique_id("site")
    await announce_study(
        telehealth.kafka,
        study,
        ["ingest", "telehealth"],
        [site],
        timezone="America/New_York",
        visits=[WEEK_2, SCREENING],
    )
    staff_id, _ = await telehealth.staff(site=site, hours="09:00-10:00")  # no admin timezone
    auth = staff_auth(site, "site_staff", study=study)
    (participant,) = await telehealth.enrol(study=study, site=site, timezone="America/New_York")
    answer = await _answer(telehealth, participant, auth)
    assert answer["study_id"] == study
    assert answer["schedule"] == {"source": "study", "note": None}
    assert [(v["name"], v["visit_type"]) for v in answer["visits"]] == [
        ("Screening", "site"),
        ("Week 2", "home"),
    ]
    # Day 14 +/- 1 of a baseline on Monday 7 Jan 2030: 19-21 Jan, New York midnights
    week2 = answer["visits"][1]
    assert (week2["window_start"], week2["window_end"]) == (
        "2030-01-19T05:00:00Z",
        "2030-01-22T05:00:00Z",
    )

    # The nurse's 09:00-10:00 are New York hours, as the study file says (UTC: 09:00Z).
    r = await telehealth.client.get(f"/v1/participants/{participant}/slots", headers=auth)
    assert r.status_code == 200, r.text
    assert [s["starts_at"] for s in r.json()["slots"]] == [
        "2030-01-07T14:00:00Z",
        "2030-01-07T14:30:00Z",
    ]
    screening = answer["visits"][0]["visit_id"]
    start = datetime(2030, 1, 7, 14, tzinfo=UTC)
    # booked by someone with roles in two studies: the audit names the booking's study
    both = staff_auth(
        grants=[Grant(Role.SITE_STAFF, study, site), Grant(Role.SITE_STAFF, "ANOTHER", site)]
    )
    booked = await telehealth.book(both, screening, staff_id, start)
    assert booked.status_code == 201, booked.text
    [scheduled] = await eventually(
        lambda: read_topic(
            telehealth.kafka,
            Topic.VISITS,
            match=lambda v: v.get("booking_id") == booked.json()["booking_id"],
        )
    )
    assert scheduled["study_id"] == study  # every event names the participant's study
    [entry] = await audited(
        telehealth.database_url, "telehealth", "booking", booked.json()["booking_id"]
    )
    assert entry["actor_detail"]["study"] == study  # the role held in the booking's study
    assert entry["actor_detail"]["role"] == "site_staff"
    url = f"/v1/sites/{site}/schedule"
    day = await telehealth.client.get(url, params={"on": "2030-01-07"}, headers=auth)
    assert day.json()["timezone"] == "America/New_York"
    assert [b["local_start"] for b in day.json()["bookings"]] == ["2030-01-07T09:00:00-05:00"]

    # A default-study participant still gets TELEHEALTH_PROTOCOL on the admin-set clock.
    default_auth = staff_auth(telehealth.site, "site_staff")
    await telehealth.staff(hours="09:00-10:00")
    (regular,) = await telehealth.enrol()
    answer = await _answer(telehealth, regular, default_auth)
    assert answer["schedule"] == {"source": "settings", "note": None}
    assert [v["name"] for v in answer["visits"]] == ["Day 1", "Day 7", "Day 28"]
    r = await telehealth.client.get(f"/v1/participants/{regular}/slots", headers=default_auth)
    assert r.json()["slots"][0]["starts_at"] == "2030-01-07T08:00:00Z"  # 09:00 Berlin


async def test_the_site_timezone_of_a_declared_study_is_refused_at_the_admin_route(
    telehealth: Telehealth,
) -> None:
    study, site = unique_id("STUDY"), unique_id("site")
    await announce_study(
        telehealth.kafka, study, ["telehealth"], [site], timezone="America/New_York"
    )
    await _study_version_read(telehealth, study, [])
    url = f"/v1/admin/sites/{site}"
    study_admin = staff_auth(None, "study_admin", study=study)
    r = await telehealth.client.put(url, json={"timezone": "Asia/Tokyo"}, headers=study_admin)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "set_in_study_file"
    assert "America/New_York" in error["message"]
    r = await telehealth.admin("PUT", f"{url}?study={study}", {"timezone": "Asia/Tokyo"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "set_in_study_file")
    # another study's admin is refused before the study file is mentioned
    other = staff_auth(None, "study_admin", study="OTHER")
    r = await telehealth.client.put(
        f"{url}?study={study}", json={"timezone": "Asia/Tokyo"}, headers=other
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    assert await telehealth.sql("SELECT timezone FROM sites WHERE site_id = $1", site) is None
    # the default study's sites are still set here
    r = await telehealth.admin("PUT", url, {"timezone": "Asia/Tokyo"})
    assert r.status_code == 200, r.text


async def test_a_study_without_visits_plans_none_and_says_so(telehealth: Telehealth) -> None:
    study, site = unique_id("STUDY"), unique_id("site")
    await announce_study(telehealth.kafka, study, ["telehealth"], [site])
    auth = staff_auth(site, "site_staff", study=study)
    (participant,) = await telehealth.enrol(study=study, site=site)
    answer = await _answer(telehealth, participant, auth)
    assert answer["visits"] == []
    assert answer["schedule"]["source"] == "study"
    assert "declares no visits" in answer["schedule"]["note"]
    r = await telehealth.client.get(f"/v1/participants/{participant}/slots", headers=auth)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "no_open_visit")
    assert "declares no visits" in r.json()["error"]["message"]


async def test_a_later_study_version_changes_new_enrolments_only(telehealth: Telehealth) -> None:
    study, site = unique_id("STUDY"), unique_id("site")
    await announce_study(telehealth.kafka, study, ["telehealth"], [site], visits=[WEEK_2])
    auth = staff_auth(site, "site_staff", study=study)
    (first,) = await telehealth.enrol(study=study, site=site)
    assert [v["name"] for v in (await _answer(telehealth, first, auth))["visits"]] == ["Week 2"]

    amended = [SCREENING, {"name": "Day 5", "day": 5}]
    await announce_study(telehealth.kafka, study, ["telehealth"], [site], version=2, visits=amended)
    await _study_version_read(telehealth, study, ["Screening", "Day 5"])
    (second,) = await telehealth.enrol(study=study, site=site)
    answer = await _answer(telehealth, second, auth)
    assert [v["name"] for v in answer["visits"]] == ["Screening", "Day 5"]

    # The first participant keeps the schedule of the version they enrolled under, also
    # when their baseline moves (re-planned from it, not from the amendment).
    assert [v["name"] for v in (await _answer(telehealth, first, auth))["visits"]] == ["Week 2"]
    r = await telehealth.client.put(
        f"/v1/participants/{first}/baseline", json={"baseline_date": "2030-01-10"}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert [(v["name"], v["window_start"]) for v in r.json()["visits"]] == [
        ("Week 2", "2030-01-21T23:00:00Z")  # Day 14 - 1 of 10 Jan: 22 Jan, Berlin midnight
    ]

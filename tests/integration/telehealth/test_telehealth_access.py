"""Who may do what in telehealth: the person behind a verified access token, and the
permission matrix at the participant's or the clinician's site (README, *Staff identity
and permissions*). Telehealth keeps no staff credentials of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from audit_helpers import audited
from helpers import announce_study, unique_id
from staff_tokens import staff_auth
from telehealth_harness import Telehealth
from trialstream.identity import Grant, Role, SigningKey
from trialstream.settings import ServiceSettings

pytestmark = pytest.mark.integration
SATURDAY_0900_BERLIN = datetime(2030, 1, 12, 8, tzinfo=UTC)


def refused(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def booked(telehealth: Telehealth) -> tuple[str, dict[str, Any]]:
    """A participant of the harness's site with their Day 7 visit booked by a nurse there."""
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    r = await telehealth.book(auth, day7["visit_id"], staff_id, SATURDAY_0900_BERLIN)
    assert r.status_code == 201, r.text
    return participant, r.json()


async def test_a_monitor_reads_visits_and_schedules_but_cannot_book_or_cancel(
    telehealth: Telehealth,
) -> None:
    participant, booking = await booked(telehealth)
    staff_id = booking["staff_id"]
    monitor = staff_auth(None, "monitor")  # every site of the study

    visits = await telehealth.client.get(f"/v1/participants/{participant}/visits", headers=monitor)
    assert visits.status_code == 200, visits.text
    schedule = await telehealth.client.get(
        f"/v1/sites/{telehealth.site}/schedule", params={"on": "2030-01-12"}, headers=monitor
    )
    assert [b["booking_id"] for b in schedule.json()["bookings"]] == [booking["booking_id"]]
    shown = await telehealth.client.get(f"/v1/bookings/{booking['booking_id']}", headers=monitor)
    assert shown.status_code == 200

    day28 = await telehealth.visit(participant, monitor, "Day 28")
    r = await telehealth.book(monitor, day28["visit_id"], staff_id, SATURDAY_0900_BERLIN)
    assert refused(r) == (403, "role_not_allowed")
    r = await telehealth.client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel", json={"reason": "not mine"}, headers=monitor
    )
    assert refused(r) == (403, "role_not_allowed")
    r = await telehealth.client.put(
        f"/v1/staff/{staff_id}/weekly-hours", json={"hours": []}, headers=monitor
    )
    assert refused(r) == (403, "role_not_allowed")


async def test_a_sponsor_gets_no_participant_level_data(telehealth: Telehealth) -> None:
    participant, booking = await booked(telehealth)
    sponsor = staff_auth(None, "sponsor")
    for url, params in [
        (f"/v1/participants/{participant}/visits", {}),
        (f"/v1/participants/{participant}/slots", {}),
        (f"/v1/bookings/{booking['booking_id']}", {}),
        (f"/v1/sites/{telehealth.site}/schedule", {"on": "2030-01-12"}),
        ("/v1/proposals", {}),
    ]:
        r = await telehealth.client.get(url, params=params, headers=sponsor)
        assert refused(r) == (403, "role_not_allowed"), url


async def test_site_staff_of_another_site_cannot_touch_this_sites_bookings_or_clinicians(
    telehealth: Telehealth,
) -> None:
    _, booking = await booked(telehealth)
    stranger = staff_auth(unique_id("site"), "site_staff")
    url = f"/v1/bookings/{booking['booking_id']}"
    assert refused(await telehealth.client.get(url, headers=stranger)) == (404, "unknown_booking")
    r = await telehealth.client.post(f"{url}/cancel", json={"reason": "not mine"}, headers=stranger)
    assert r.status_code == 404
    r = await telehealth.client.put(
        f"/v1/staff/{booking['staff_id']}/weekly-hours", json={"hours": []}, headers=stranger
    )
    assert refused(r) == (404, "unknown_staff")
    r = await telehealth.client.post(
        "/v1/admin/staff",
        json={"staff_id": unique_id("nurse"), "site_id": telehealth.site},
        headers=stranger,
    )
    assert refused(r) == (403, "forbidden_site")
    after = await telehealth.client.get(url, headers=staff_auth(telehealth.site))
    assert after.json()["status"] == "booked"


async def test_site_settings_need_a_study_admin(telehealth: Telehealth) -> None:
    url = f"/v1/admin/sites/{telehealth.site}"
    for role in ("site_staff", "investigator", "monitor"):
        r = await telehealth.client.put(
            url, json={"timezone": "Asia/Tokyo"}, headers=staff_auth(telehealth.site, role)
        )
        assert refused(r) == (403, "role_not_allowed"), role
    admin = staff_auth(None, "study_admin", subject="sa-1", name="Stella Admin")
    r = await telehealth.client.put(url, json={"timezone": "Europe/Berlin"}, headers=admin)
    assert r.status_code == 200, r.text
    last = (await audited(telehealth.database_url, "telehealth", "site", telehealth.site))[-1]
    assert (last["actor"], last["actor_detail"]) == (
        "staff:sa-1",
        {"name": "Stella Admin", "role": "study_admin", "study": "default"},
    )


async def test_site_staff_register_a_clinician_of_their_site_without_a_credential(
    telehealth: Telehealth,
) -> None:
    nurse_id = unique_id("nurse")
    coordinator = staff_auth(telehealth.site, "site_staff", subject="co-1", name="Cora Ordinator")
    r = await telehealth.client.post(
        "/v1/admin/staff",
        json={"staff_id": nurse_id, "site_id": telehealth.site},
        headers=coordinator,
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"staff_id": nurse_id, "site_id": telehealth.site}  # no token
    columns = {
        row[0]
        for row in await telehealth.sql_rows(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'telehealth' AND table_name = 'staff'"
        )
    }
    assert "token_hash" not in columns
    (entry,) = await audited(telehealth.database_url, "telehealth", "staff", nurse_id)
    assert (entry["actor"], entry["action"], entry["actor_detail"]) == (
        "staff:co-1",
        "staff.registered",
        {"name": "Cora Ordinator", "role": "site_staff", "study": "default"},
    )

    # The clinician signs in at the issuer; their token's subject is their staff_id.
    nurse = staff_auth(telehealth.site, "site_staff", subject=nurse_id)
    weekly = [{"weekday": 5, "start": "09:00", "end": "12:00"}]
    r = await telehealth.client.put(
        f"/v1/staff/{nurse_id}/weekly-hours", json={"hours": weekly}, headers=nurse
    )
    assert r.status_code == 200, r.text


async def test_a_booking_names_the_person_and_their_role_in_the_audit(
    telehealth: Telehealth,
) -> None:
    staff_id, _ = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    investigator = staff_auth(telehealth.site, "investigator", subject="pi-1", name="Ivy Vest")
    day7 = await telehealth.visit(participant, investigator, "Day 7")
    r = await telehealth.book(investigator, day7["visit_id"], staff_id, SATURDAY_0900_BERLIN)
    assert r.status_code == 201, r.text
    (entry,) = await audited(
        telehealth.database_url, "telehealth", "booking", r.json()["booking_id"]
    )
    assert (entry["actor"], entry["actor_detail"]) == (
        "staff:pi-1",
        {"name": "Ivy Vest", "role": "investigator", "study": "default"},
    )


async def test_tokens_that_are_not_from_the_issuer_are_refused(telehealth: Telehealth) -> None:
    defaults = ServiceSettings()
    forged = SigningKey.generate().issue(
        issuer=defaults.oidc_issuer,
        audience=defaults.oidc_audience,
        subject="mallory",
        name="Mallory",
        grants=[Grant(Role.PLATFORM_ADMIN, None)],
    )
    url = f"/v1/sites/{telehealth.site}/schedule"
    for headers in (
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": "Bearer staff_not-a-jwt"},  # what telehealth used to hand out
        {},
    ):
        r = await telehealth.client.get(url, params={"on": "2030-01-12"}, headers=headers)
        assert r.status_code == 401, headers
    r = await telehealth.client.get(
        url, params={"on": "2030-01-12"}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert r.json()["error"]["code"] == "invalid_token"


async def test_staff_of_another_study_do_not_see_visits_at_a_site_of_the_same_name(
    telehealth: Telehealth,
) -> None:
    # A study id of its own (tests share the broker), with a visit: a study plans the visits
    # its file declares, none if it declares none.
    study = unique_id("STUDY-B")
    visits = [{"name": "Week 1", "day": 7}]
    await announce_study(
        telehealth.kafka, study, ["ingest", "telehealth"], [telehealth.site], visits=visits
    )
    (participant,) = await telehealth.enrol(study=study)
    ours = staff_auth(telehealth.site, "site_staff", study=study)
    theirs = staff_auth(telehealth.site, "site_staff", study="STUDY-A")
    await telehealth.visits(participant, ours)
    r = await telehealth.client.get(f"/v1/participants/{participant}/visits", headers=theirs)
    assert r.status_code == 404
    r = await telehealth.client.get(f"/v1/participants/{participant}/slots", headers=theirs)
    assert r.status_code == 404

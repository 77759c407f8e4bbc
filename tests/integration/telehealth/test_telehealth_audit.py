"""Telehealth's state changes are audited: bookings and their lifecycle, availability,
staff and sites, each with the actor, old -> new, and the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from audit_helpers import audited, changes
from helpers import eventually
from telehealth_harness import Telehealth
from test_telehealth_urgent_and_reminders import alert, proposals
from trialstream import audit
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


async def reasons(telehealth: Telehealth, entries: list[dict[str, Any]]) -> list[str | None]:
    """Each entry's reason: one staff typed is free text about the participant, kept off
    the chain (a salted digest there, the text in the side table until erasure; decision
    0087); a system's stays in the chain."""
    conn = await asyncpg.connect(
        telehealth.database_url, server_settings={"search_path": "telehealth"}
    )
    try:
        shown = []
        for e in entries:
            if e["reason"] is None or not e["actor"].startswith("staff:"):
                shown.append(e["reason"])  # none, or a system's fixed text
                continue
            assert e["reason"].startswith("sha256:"), e
            shown.append(await audit.erasable_text(conn, e["seq"]))
        return shown
    finally:
        await conn.close()


async def test_a_booking_lifecycle_is_audited_with_reasons(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    day7 = await telehealth.visit(participant, auth, "Day 7")
    booked = await telehealth.book(
        auth, day7["visit_id"], staff_id, datetime(2030, 1, 12, 8, tzinfo=UTC)
    )
    assert booked.status_code == 201, booked.text
    url = f"/v1/bookings/{booked.json()['booking_id']}"
    moved = await telehealth.client.post(
        f"{url}/reschedule",
        json={"starts_at": "2030-01-13T08:30:00Z", "reason": "work shift"},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    cancelled = await telehealth.client.post(
        f"{url}/cancel", json={"reason": "feeling unwell"}, headers=auth
    )
    assert cancelled.status_code == 200, cancelled.text

    entries = await audited(
        telehealth.database_url, "telehealth", "booking", booked.json()["booking_id"]
    )
    assert [(e["actor"], e["action"]) for e in entries] == [
        (f"staff:{staff_id}", "booking.booked"),
        (f"staff:{staff_id}", "booking.rescheduled"),
        (f"staff:{staff_id}", "booking.cancelled"),
    ]
    assert await reasons(telehealth, entries) == [None, "work shift", "feeling unwell"]
    assert [
        (
            e["old"] and (e["old"]["status"], e["old"]["starts_at"]),
            e["new"]["status"],
            e["new"]["starts_at"],
        )
        for e in entries
    ] == [
        (None, "booked", "2030-01-12T08:00:00.000000Z"),
        (("booked", "2030-01-12T08:00:00.000000Z"), "booked", "2030-01-13T08:30:00.000000Z"),
        (("booked", "2030-01-13T08:30:00.000000Z"), "cancelled", "2030-01-13T08:30:00.000000Z"),
    ]
    assert entries[-1]["new"]["visit_status"] == "open"  # the visit can be booked again


async def test_availability_staff_and_site_changes_are_audited(telehealth: Telehealth) -> None:
    staff_id, auth = await telehealth.staff(hours="09:00-12:00")
    url = f"/v1/staff/{staff_id}/exceptions/2030-01-14"
    r = await telehealth.client.put(url, json={"hours": []}, headers=auth)
    assert r.status_code == 200, r.text
    assert (await telehealth.client.delete(url, headers=auth)).status_code == 200
    assert (await telehealth.client.delete(url, headers=auth)).status_code == 200  # no change

    db = telehealth.database_url
    weekly = await audited(db, "telehealth", "staff_availability", f"{staff_id}/weekly")
    assert changes(weekly) == [
        (
            f"staff:{staff_id}",
            "availability.weekly_hours_set",
            [],
            [[d, "09:00:00", "12:00:00"] for d in range(7)],
        )
    ]
    day_off = await audited(db, "telehealth", "staff_availability", f"{staff_id}/2030-01-14")
    assert changes(day_off) == [
        (f"staff:{staff_id}", "availability.exception_set", None, []),
        (f"staff:{staff_id}", "availability.exception_removed", [], None),
    ]
    assert changes(await audited(db, "telehealth", "staff", staff_id)) == [
        ("staff:telehealth-admin", "staff.registered", None, {"site_id": telehealth.site})
    ]
    assert day_off[0]["actor_detail"] == {
        "name": f"Test {staff_id}",
        "role": "site_staff",
        "study": "default",
    }
    (participant,) = await telehealth.enrol()
    await telehealth.visits(participant, auth)
    (planned,) = await audited(db, "telehealth", "participant", participant)
    assert (planned["actor"], planned["action"]) == ("system:telehealth", "visits.planned")
    assert [v[0] for v in planned["new"]["visits"]][:2] == ["Day 1", "Day 7"]
    site = await audited(db, "telehealth", "site", telehealth.site)
    assert [(e["action"], e["new"]) for e in site] == [
        ("site.timezone_set", {"timezone": "Europe/Berlin"})
    ]


async def test_an_urgent_proposal_is_audited_from_the_system_to_the_staff_decision(
    telehealth: Telehealth,
) -> None:
    staff_id, auth = await telehealth.staff()
    (participant,) = await telehealth.enrol()
    await telehealth.visits(participant, auth)
    high = alert(participant)
    await telehealth.publish(Topic.ALERTS, [(participant, high)])
    (proposal,) = await eventually(lambda: proposals(telehealth, auth))
    r = await telehealth.client.post(
        f"/v1/proposals/{proposal['booking_id']}/dismiss",
        json={"note": "seen in clinic"},
        headers=auth,
    )
    assert r.status_code == 200, r.text

    entries = await audited(
        telehealth.database_url, "telehealth", "booking", proposal["booking_id"]
    )
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("system:telehealth", "proposal.created"),
        (f"staff:{staff_id}", "proposal.dismissed"),
    ]
    assert await reasons(telehealth, entries) == [
        f"high-severity alert {high.event_id}",
        "seen in clinic",
    ]
    assert [(e["new"]["status"], e["new"]["visit_status"]) for e in entries] == [
        ("proposed", "proposed"),
        ("dismissed", "cancelled"),
    ]

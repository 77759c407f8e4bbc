"""Who may read and act on alerts: pure rules, no database."""

from __future__ import annotations

import pytest
from monitoring.domain import (
    AlertStatus,
    Staff,
    check_acknowledge,
    may_read,
    site_to_read,
)
from staff_tokens import principal
from trialstream.errors import Kind, Refused
from trialstream.identity import Role


def person(role: Role, *sites: str, signed_in_seconds_ago: float = 0.0) -> Staff:
    """Someone with `role` at `sites` (none: every site) of the default study."""
    return Staff(principal(role, *sites, signed_in_seconds_ago=signed_in_seconds_ago))


NURSE_A = person(Role.SITE_STAFF, "site-a")
MONITOR = person(Role.MONITOR)


def test_site_staff_listing_defaults_to_their_own_site() -> None:
    assert site_to_read(NURSE_A, None) == "site-a"
    assert site_to_read(NURSE_A, "site-a") == "site-a"


def test_site_staff_cannot_list_another_site() -> None:
    with pytest.raises(Refused) as denied:
        site_to_read(NURSE_A, "site-b")
    assert (denied.value.kind, denied.value.code) == (Kind.FORBIDDEN, "forbidden_site")


def test_monitor_reads_any_site_or_all() -> None:
    assert site_to_read(MONITOR, "site-b") == "site-b"
    assert site_to_read(MONITOR, None) is None
    assert may_read(MONITOR, "site-z")


def test_alert_of_an_unknown_site_is_visible_to_monitors_only() -> None:
    assert not may_read(NURSE_A, None)
    assert may_read(MONITOR, None)


def test_site_staff_acknowledge_open_alerts_of_their_site() -> None:
    check_acknowledge(NURSE_A, "site-a", AlertStatus.OPEN)


@pytest.mark.parametrize(
    ("staff", "site", "status", "kind", "code"),
    [
        (NURSE_A, "site-b", AlertStatus.OPEN, Kind.FORBIDDEN, "forbidden_site"),
        (MONITOR, "site-a", AlertStatus.OPEN, Kind.FORBIDDEN, "role_not_allowed"),
        (NURSE_A, "site-a", AlertStatus.ACKNOWLEDGED, Kind.CONFLICT, "already_acknowledged"),
    ],
)
def test_acknowledge_is_refused_with_a_reason(
    staff: Staff, site: str, status: AlertStatus, kind: Kind, code: str
) -> None:
    with pytest.raises(Refused) as refused:
        check_acknowledge(staff, site, status)
    assert (refused.value.kind, refused.value.code) == (kind, code)


def test_someone_at_several_sites_names_the_one_a_listing_is_for() -> None:
    both = person(Role.SITE_STAFF, "site-a", "site-b")
    assert site_to_read(both, "site-b") == "site-b"
    with pytest.raises(Refused) as refused:
        site_to_read(both, None)
    assert (refused.value.kind, refused.value.code) == (Kind.INVALID, "site_required")


def test_a_sponsor_reads_no_participant_data() -> None:
    sponsor = person(Role.SPONSOR)
    with pytest.raises(Refused) as refused:
        site_to_read(sponsor, "site-a")
    assert (refused.value.kind, refused.value.code) == (Kind.FORBIDDEN, "role_not_allowed")
    assert not may_read(sponsor, "site-a")

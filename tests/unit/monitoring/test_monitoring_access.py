"""Who may read and act on alerts: pure rules, no database."""

from __future__ import annotations

import pytest
from monitoring.domain import (
    AlertStatus,
    Role,
    Staff,
    check_acknowledge,
    may_read,
    site_to_read,
)
from trialstream.errors import Kind, Refused

NURSE_A = Staff("nurse-a1", "site-a", Role.SITE_STAFF)
MONITOR = Staff("cra-1", "cro", Role.MONITOR)


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
        (MONITOR, "site-a", AlertStatus.OPEN, Kind.FORBIDDEN, "read_only_role"),
        (NURSE_A, "site-a", AlertStatus.ACKNOWLEDGED, Kind.CONFLICT, "already_acknowledged"),
    ],
)
def test_acknowledge_is_refused_with_a_reason(
    staff: Staff, site: str, status: AlertStatus, kind: Kind, code: str
) -> None:
    with pytest.raises(Refused) as refused:
        check_acknowledge(staff, site, status)
    assert (refused.value.kind, refused.value.code) == (kind, code)

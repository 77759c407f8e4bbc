"""Who may see and do what in the alert inbox. Pure: no database, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    SITE_STAFF = "site_staff"  # their own site only; can act on alerts
    MONITOR = "monitor"  # CRO monitor: every site, read-only


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True)
class Staff:
    staff_id: str
    site_id: str
    role: Role


class AccessDenied(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidTransition(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def site_to_read(staff: Staff, requested_site: str | None) -> str | None:
    """The site a listing is scoped to (None = every site, monitors only)."""
    if staff.role is Role.MONITOR:
        return requested_site
    if requested_site is not None and requested_site != staff.site_id:
        raise AccessDenied(
            "forbidden_site", f"staff of site '{staff.site_id}' cannot read site '{requested_site}'"
        )
    return staff.site_id


def may_read(staff: Staff, alert_site: str | None) -> bool:
    return staff.role is Role.MONITOR or (alert_site is not None and alert_site == staff.site_id)


def check_acknowledge(staff: Staff, alert_site: str | None, status: AlertStatus) -> None:
    """Raise unless `staff` may acknowledge an alert of `alert_site` in `status`."""
    if staff.role is not Role.SITE_STAFF:
        raise AccessDenied("read_only_role", "monitors can read alerts but not act on them")
    if alert_site != staff.site_id:
        raise AccessDenied("forbidden_site", "this alert belongs to another site")
    if status is not AlertStatus.OPEN:
        raise InvalidTransition("already_acknowledged", "the alert has already been acknowledged")

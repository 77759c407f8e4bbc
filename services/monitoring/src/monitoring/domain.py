"""Who may see and do what in the alert inbox, and the alert's life. Pure: no database, no HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from trialstream.errors import Kind, Refused
from trialstream.identity import DEFAULT_STUDY, Action, Principal
from trialstream.staff import acting, check_step_up, forbidden, site_scope


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Staff:
    """A person acting in one study, as their verified access token says (issue 15): what
    they may do is the platform's permission matrix (`trialstream.identity.PERMISSIONS`)
    for their roles in the study, at the sites their grants cover."""

    principal: Principal
    study_id: str = DEFAULT_STUDY

    def in_study(self, study_id: str | None) -> Staff:
        """The same person, acting on something of `study_id` (None: of a participant not
        enrolled here yet, which belongs to the default study until then)."""
        study = study_id or DEFAULT_STUDY
        return self if study == self.study_id else Staff(self.principal, study)

    @property
    def staff_id(self) -> str:
        """Who is recorded as having acknowledged or resolved (the token's subject)."""
        return self.principal.subject

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def actor_detail(self) -> dict[str, str]:
        return acting(self.principal, self.study_id)

    @property
    def sites(self) -> frozenset[str] | None:
        """The sites they read; None: every site of the study."""
        return self.principal.sites(self.study_id)

    @property
    def all_sites(self) -> bool:
        return self.sites is None

    @property
    def can_act(self) -> bool:
        return self.principal.allows(Action.ACT_ON_ALERTS, self.study_id)

    @property
    def roles(self) -> list[str]:
        return sorted(str(r) for r in self.principal.roles(self.study_id))

    def allows(self, action: Action, site: str | None) -> bool:
        """`action` on something of `site` (None: a site not known yet, which only
        someone who sees every site may touch)."""
        if site is None and not self.all_sites:
            return False
        return self.principal.allows(action, self.study_id, site)


def denied(code: str, message: str) -> Refused:
    """The caller may not do this (403)."""
    return Refused(Kind.FORBIDDEN, code, message)


def invalid_transition(code: str, message: str) -> Refused:
    """The alert's or flag's state refuses this (409)."""
    return Refused(Kind.CONFLICT, code, message)


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert in the inbox, as the repository reads it and the routes and pages show it.
    `ack_due_at` and `overdue` are filled in by `with_deadline` for the moment of reading."""

    alert_id: UUID
    participant_id: str
    site_id: str | None  # None until monitoring has seen the participant's enrolment
    kind: str
    metric: str | None
    severity: str
    rule: str
    detected_at: datetime
    window_start: datetime
    window_end: datetime
    observed: list[float]
    threshold: float | None
    baseline: float | None
    model_version: str
    explanation: str
    status: AlertStatus
    received_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None
    episode_ended_at: datetime | None
    episode_end_note: str | None
    episode_id: UUID
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_reason: str | None
    escalated_at: datetime | None
    # None until monitoring has seen the participant's enrolment (then: the default study's)
    study_id: str | None = None
    ack_due_at: datetime | None = None
    overdue: bool = False


@dataclass(frozen=True, slots=True)
class Episode:
    """Alerts of one participant, kind and rule until the episode ended or all resolved."""

    episode_id: UUID
    participant_id: str
    site_id: str | None
    kind: str
    rule: str
    severity: str
    status: AlertStatus
    overdue: bool
    first_detected_at: datetime
    last_detected_at: datetime
    ended_at: datetime | None
    alerts: list[Alert] = field(default_factory=list)


def site_to_read(
    staff: Staff, requested_site: str | None, action: Action = Action.READ_PARTICIPANT_DATA
) -> str | None:
    """The site a listing is scoped to (trialstream.staff.site_scope)."""
    return site_scope(staff.principal, action, requested_site, staff.study_id)


def may_read(staff: Staff, site: str | None) -> bool:
    return staff.allows(Action.READ_PARTICIPANT_DATA, site)


def check_read(staff: Staff, site: str | None) -> None:
    if not may_read(staff, site):
        if staff.principal.allows(Action.READ_PARTICIPANT_DATA, staff.study_id):
            raise denied("forbidden_site", "this belongs to another site")
        raise forbidden(Action.READ_PARTICIPANT_DATA, staff.study_id)


def _check_act(staff: Staff, alert_site: str | None, action: Action = Action.ACT_ON_ALERTS) -> None:
    check_read(staff, alert_site)
    if not staff.allows(action, alert_site):
        raise forbidden(action, staff.study_id)


def check_acknowledge(staff: Staff, alert_site: str | None, status: AlertStatus) -> None:
    """Raise unless `staff` may acknowledge an alert of `alert_site` in `status`."""
    _check_act(staff, alert_site)
    if status is AlertStatus.ACKNOWLEDGED:
        raise invalid_transition("already_acknowledged", "the alert has already been acknowledged")
    if status is AlertStatus.RESOLVED:
        raise invalid_transition("already_resolved", "the alert has already been resolved")


def check_resolve(
    staff: Staff, alert_site: str | None, status: AlertStatus, severity: str, step_up_seconds: float
) -> None:
    """Resolving is allowed from open as well as acknowledged: a nurse who looked at a
    device-quality alert and fixed the strap has acknowledged and resolved it in one step
    (the audit row records old status 'open'). Resolving a high-severity alert is a Part 11
    signature: an investigator, signed in within the last `step_up_seconds`."""
    if severity == "high":
        _check_act(staff, alert_site, Action.SIGN)
        check_step_up(staff.principal, step_up_seconds)
    else:
        _check_act(staff, alert_site)
    if status is AlertStatus.RESOLVED:
        raise invalid_transition("already_resolved", "the alert has already been resolved")


@dataclass(frozen=True)
class AckDeadlines:
    """How long an alert of each severity may stay unacknowledged before it escalates."""

    by_severity: Mapping[str, timedelta]

    def due_at(self, severity: str, received_at: datetime) -> datetime:
        return received_at + self.by_severity[severity]

    def overdue(self, severity: str, status: str, received_at: datetime, now: datetime) -> bool:
        return status == AlertStatus.OPEN and now >= self.due_at(severity, received_at)


def with_deadline(alerts: Sequence[Alert], deadlines: AckDeadlines, now: datetime) -> list[Alert]:
    """Each alert with when its acknowledgement is due and whether that has passed."""
    return [
        replace(
            a,
            ack_due_at=deadlines.due_at(a.severity, a.received_at),
            overdue=deadlines.overdue(a.severity, a.status, a.received_at, now),
        )
        for a in alerts
    ]


_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2}
_STATUS_RANK = {AlertStatus.RESOLVED: 0, AlertStatus.ACKNOWLEDGED: 1, AlertStatus.OPEN: 2}


def group_episodes(alerts: Sequence[Alert]) -> list[Episode]:
    """Alerts grouped per participant episode (same participant, kind and rule, until the
    episode ended or all its alerts were resolved), newest episode first. The episode
    takes its most urgent alert's status and its highest severity."""
    groups: dict[UUID, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.episode_id, []).append(alert)
    episodes = []
    for episode_id, members in groups.items():
        members = sorted(members, key=lambda a: a.detected_at, reverse=True)
        first = members[-1]
        episodes.append(
            Episode(
                episode_id=episode_id,
                participant_id=first.participant_id,
                site_id=first.site_id,
                kind=first.kind,
                rule=first.rule,
                severity=max((a.severity for a in members), key=_SEVERITY_RANK.__getitem__),
                status=max((a.status for a in members), key=_STATUS_RANK.__getitem__),
                overdue=any(a.overdue for a in members),
                first_detected_at=first.detected_at,
                last_detected_at=members[0].detected_at,
                ended_at=first.episode_ended_at,
                alerts=members,
            )
        )
    episodes.sort(key=lambda e: e.last_detected_at, reverse=True)
    return episodes

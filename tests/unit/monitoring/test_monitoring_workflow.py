"""The alert workflow's pure rules: resolve, admins, deadlines, episode grouping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from monitoring.domain import (
    AckDeadlines,
    Alert,
    AlertStatus,
    Staff,
    check_acknowledge,
    check_resolve,
    group_episodes,
    site_to_read,
)
from monitoring.settings import MonitoringSettings
from test_monitoring_access import person
from trialstream.errors import Kind, Refused
from trialstream.identity import Role

NURSE_A = person(Role.SITE_STAFF, "site-a")
MONITOR = person(Role.MONITOR)
INVESTIGATOR = person(Role.INVESTIGATOR)  # every site of the study
STEP_UP = 300.0
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
def test_site_staff_resolve_from_open_or_acknowledged(status: AlertStatus) -> None:
    check_resolve(NURSE_A, "site-a", status, "medium", STEP_UP)


@pytest.mark.parametrize(
    ("staff", "site", "status", "kind", "code"),
    [
        (NURSE_A, "site-b", AlertStatus.OPEN, Kind.FORBIDDEN, "forbidden_site"),
        (MONITOR, "site-a", AlertStatus.ACKNOWLEDGED, Kind.FORBIDDEN, "role_not_allowed"),
        (NURSE_A, "site-a", AlertStatus.RESOLVED, Kind.CONFLICT, "already_resolved"),
    ],
)
def test_resolve_is_refused_with_a_reason(
    staff: Staff, site: str, status: AlertStatus, kind: Kind, code: str
) -> None:
    with pytest.raises(Refused) as refused:
        check_resolve(staff, site, status, "medium", STEP_UP)
    assert (refused.value.kind, refused.value.code) == (kind, code)


def test_a_resolved_alert_cannot_be_acknowledged() -> None:
    with pytest.raises(Refused) as refused:
        check_acknowledge(NURSE_A, "site-a", AlertStatus.RESOLVED)
    assert (refused.value.kind, refused.value.code) == (Kind.CONFLICT, "already_resolved")


def test_an_investigator_of_the_whole_study_reads_acts_and_signs_on_every_site() -> None:
    assert site_to_read(INVESTIGATOR, None) is None
    assert site_to_read(INVESTIGATOR, "site-b") == "site-b"
    check_acknowledge(INVESTIGATOR, "site-b", AlertStatus.OPEN)
    check_resolve(INVESTIGATOR, None, AlertStatus.OPEN, "high", STEP_UP)


def test_a_high_alerts_resolution_is_an_investigators_recent_signature() -> None:
    with pytest.raises(Refused) as refused:
        check_resolve(NURSE_A, "site-a", AlertStatus.OPEN, "high", STEP_UP)
    assert refused.value.code == "role_not_allowed"
    stale = person(Role.INVESTIGATOR, "site-a", signed_in_seconds_ago=STEP_UP + 1)
    with pytest.raises(Refused) as refused:
        check_resolve(stale, "site-a", AlertStatus.OPEN, "high", STEP_UP)
    assert (refused.value.kind, refused.value.code) == (Kind.UNAUTHORIZED, "step_up_required")


def test_default_deadlines_are_shorter_for_more_severe_alerts() -> None:
    deadlines = MonitoringSettings().ack_deadlines()
    high, medium, low = (deadlines.by_severity[s] for s in ("high", "medium", "low"))
    assert high == timedelta(minutes=15)
    assert high < medium < low


def test_only_open_alerts_past_their_deadline_are_overdue() -> None:
    deadlines = AckDeadlines({"high": timedelta(minutes=15), "low": timedelta(hours=4)})
    now = T0 + timedelta(minutes=15)
    assert deadlines.due_at("high", T0) == now
    assert deadlines.overdue("high", "open", T0, now)
    assert not deadlines.overdue("high", "open", T0, now - timedelta(seconds=1))
    assert not deadlines.overdue("high", "acknowledged", T0, now + timedelta(hours=1))
    assert not deadlines.overdue("low", "open", T0, now)


def _alert(episode: uuid.UUID, minutes: int, severity: str, status: str) -> Alert:
    at = T0 + timedelta(minutes=minutes)
    return Alert(
        alert_id=uuid.uuid4(),
        participant_id="P-1",
        site_id="site-a",
        kind="clinical",
        metric="heart-rate",
        severity=severity,
        rule="clinical-limit/heart-rate-high",
        detected_at=at,
        window_start=at,
        window_end=at,
        observed=[130.0],
        threshold=120.0,
        baseline=None,
        model_version="rules-2.0",
        explanation="heart rate 130 at rest",
        status=AlertStatus(status),
        received_at=at,
        acknowledged_by=None,
        acknowledged_at=None,
        ack_note=None,
        episode_ended_at=None,
        episode_end_note=None,
        episode_id=episode,
        resolved_by=None,
        resolved_at=None,
        resolution_reason=None,
        escalated_at=None,
        overdue=status == "open" and minutes < 10,
    )


def test_episode_takes_the_most_urgent_status_and_highest_severity() -> None:
    old, new = uuid.uuid4(), uuid.uuid4()
    alerts = [
        _alert(old, 0, "medium", "acknowledged"),
        _alert(old, 5, "high", "open"),
        _alert(new, 30, "low", "acknowledged"),
    ]
    episodes = group_episodes(alerts)
    assert [(e.episode_id, e.severity, e.status, e.overdue) for e in episodes] == [
        (new, "low", "acknowledged", False),
        (old, "high", "open", True),
    ]
    assert episodes[1].first_detected_at == T0
    assert [a.detected_at for a in episodes[1].alerts] == [
        T0 + timedelta(minutes=5),
        T0,
    ]

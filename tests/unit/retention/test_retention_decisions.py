"""Nudge decisions: quiet hours and caps across timezones (DST included), opt-out, language."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from uuid import uuid4

import pytest
from retention.domain import (
    ChannelKind,
    Outcome,
    Preferences,
    SuppressReason,
    Trigger,
    TriggerKind,
    decide,
)
from retention.templates import TEMPLATES, TONES, render


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def trigger(at: datetime, kind: TriggerKind = TriggerKind.EPRO_DUE, **kw: object) -> Trigger:
    return Trigger(kind, "P-0001", uuid4(), key=str(kind), at=at, **kw)  # type: ignore[arg-type]


def test_nudge_inside_quiet_hours_is_deferred_to_local_morning() -> None:
    prefs = Preferences(timezone="Europe/Berlin")
    at = utc(2026, 6, 10, 21, 30)  # 23:30 in Berlin (CEST)
    d = decide(trigger(at), prefs, [], at)
    assert d.outcome is Outcome.SEND
    assert d.send_at == utc(2026, 6, 11, 6, 0)  # 08:00 CEST
    assert "deferred by quiet hours" in d.detail


def test_quiet_hours_follow_the_participant_timezone_not_utc() -> None:
    at = utc(2026, 6, 10, 14, 0)  # 23:00 in Tokyo, 10:00 in New York
    tokyo = decide(trigger(at), Preferences(timezone="Asia/Tokyo"), [], at)
    new_york = decide(trigger(at), Preferences(timezone="America/New_York"), [], at)
    assert tokyo.send_at == utc(2026, 6, 10, 23, 0)  # 08:00 JST next day
    assert new_york.send_at == at


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # 2026-03-08 New York springs forward at 02:00: 08:00 is EDT (UTC-4)
        (utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 12, 0)),
        # 2026-11-01 New York falls back at 02:00: 08:00 is EST (UTC-5)
        (utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 13, 0)),
    ],
)
def test_quiet_hours_end_at_local_wall_time_across_dst_changes(
    at: datetime, expected: datetime
) -> None:
    d = decide(trigger(at), Preferences(timezone="America/New_York"), [], at)
    assert d.send_at == expected


def test_quiet_end_inside_the_spring_forward_gap_lands_just_after_it() -> None:
    prefs = Preferences(timezone="America/New_York", quiet_start=time(23, 0), quiet_end=time(2, 30))
    at = utc(2026, 3, 8, 5, 0)  # 00:00 EST; 02:30 does not exist that night
    d = decide(trigger(at), prefs, [], at)
    assert d.send_at == utc(2026, 3, 8, 7, 30)  # 03:30 EDT


def test_nudge_that_would_be_stale_after_quiet_hours_is_suppressed() -> None:
    at = utc(2026, 6, 10, 22, 0)  # 23:00 in London
    t = trigger(at, TriggerKind.VISIT_1H, expires_at=at + timedelta(hours=1))
    d = decide(t, Preferences(timezone="Europe/London"), [], at)
    assert (d.outcome, d.reason) == (Outcome.SUPPRESS, SuppressReason.QUIET_HOURS)


def test_no_quiet_hours_when_start_equals_end() -> None:
    prefs = Preferences(quiet_start=time(0, 0), quiet_end=time(0, 0))
    at = utc(2026, 6, 10, 3, 0)
    assert decide(trigger(at), prefs, [], at).send_at == at


def test_fourth_nudge_of_a_local_day_is_capped() -> None:
    prefs = Preferences(timezone="America/Los_Angeles", max_per_day=3)
    at = utc(2026, 6, 10, 20, 0)  # 13:00 in Los Angeles
    same_local_day = [utc(2026, 6, 10, 16, 0), utc(2026, 6, 10, 18, 0), utc(2026, 6, 11, 2, 0)]
    d = decide(trigger(at), prefs, same_local_day, at)
    assert (d.outcome, d.reason) == (Outcome.SUPPRESS, SuppressReason.FREQUENCY_CAP)
    assert "2026-06-10 (America/Los_Angeles), cap 3" in d.detail


def test_cap_counts_the_local_day_not_the_utc_day() -> None:
    prefs = Preferences(timezone="America/Los_Angeles", max_per_day=3)
    at = utc(2026, 6, 10, 20, 0)  # 13:00 on 10 June in Los Angeles
    # Same UTC day, but 9 June evening in Los Angeles: they do not count against 10 June.
    previous_local_day = [utc(2026, 6, 10, 1, 0), utc(2026, 6, 10, 2, 0), utc(2026, 6, 10, 3, 0)]
    assert decide(trigger(at), prefs, previous_local_day, at).outcome is Outcome.SEND


def test_deferred_nudge_counts_against_the_day_it_will_be_sent() -> None:
    prefs = Preferences(timezone="Europe/Paris", max_per_day=1)
    at = utc(2026, 6, 10, 21, 0)  # 23:00 in Paris, deferred to 11 June 08:00
    already_tomorrow = [utc(2026, 6, 11, 7, 0)]
    d = decide(trigger(at), prefs, already_tomorrow, at)
    assert d.reason is SuppressReason.FREQUENCY_CAP


def test_opted_out_preferred_channel_falls_back_to_another() -> None:
    prefs = Preferences(channel=ChannelKind.SMS, opted_out=frozenset({ChannelKind.SMS}))
    at = utc(2026, 6, 10, 12, 0)
    assert decide(trigger(at), prefs, [], at).channel is ChannelKind.PUSH


def test_opting_out_of_every_channel_suppresses_with_reason() -> None:
    prefs = Preferences(opted_out=frozenset(ChannelKind))
    at = utc(2026, 6, 10, 12, 0)
    d = decide(trigger(at), prefs, [], at)
    assert (d.outcome, d.reason) == (Outcome.SUPPRESS, SuppressReason.OPT_OUT)


def test_escalating_trigger_becomes_a_coordinator_task_whatever_the_hour() -> None:
    at = utc(2026, 6, 10, 23, 0)
    t = trigger(at, TriggerKind.EPRO_MISSED, escalate=True, reason="3 missed")
    d = decide(t, Preferences(opted_out=frozenset(ChannelKind)), [], at)
    assert (d.outcome, d.detail) == (Outcome.ESCALATE, "3 missed")


@pytest.mark.parametrize(
    ("requested", "used"),
    [("es", "es"), ("fr-CA", "fr"), ("pt_BR", "pt"), ("DE", "de"), ("it", "en"), ("zz-ZZ", "en")],
)
def test_language_falls_back_from_region_to_base_to_english(requested: str, used: str) -> None:
    language, text = render("epro-due", requested, {})
    assert language == used
    assert text == TEMPLATES[used]["epro-due"]


def test_every_language_has_every_trigger_template_and_placeholders_fill() -> None:
    for language, templates in TEMPLATES.items():
        assert set(templates) == set(TONES), language
        _, text = render(
            "visit-reminder-24h", language, {"visit_name": "Day 7", "visit_time": "09:30"}
        )
        assert "Day 7" in text
        assert "09:30" in text
        assert "{" not in render("milestone", language, {"days": "7"})[1]


def test_decision_renders_in_the_participant_language_with_the_context_tone() -> None:
    at = utc(2026, 6, 10, 12, 0)
    d = decide(trigger(at, TriggerKind.EPRO_MISSED), Preferences(language="de"), [], at)
    assert (d.language, d.tone) == ("de", "supportive")
    assert d.text.startswith("Ihr letzter Fragebogen")


def test_nudge_id_is_deterministic_per_source_event_and_key() -> None:
    source = uuid4()
    at = utc(2026, 6, 10, 12, 0)
    a = Trigger(TriggerKind.EPRO_DUE, "P-1", source, key="epro-due", at=at)
    b = Trigger(TriggerKind.EPRO_DUE, "P-1", source, key="epro-due", at=at + timedelta(hours=1))
    c = Trigger(TriggerKind.MILESTONE, "P-1", source, key="milestone-7", at=at)
    assert a.nudge_id == b.nudge_id != c.nudge_id

"""Nudge decisions: pure functions of a trigger, the participant's preferences and the
nudges already scheduled. No database, no broker, no clock: `now` is an argument.

Order of the checks (each a reason recorded in the journey when it stops a nudge):
escalation (repeated misses go to the coordinator instead), opt-out (no channel left),
quiet hours (defer to the end of the quiet period, or suppress if the nudge would be
stale by then), frequency cap (per local calendar day of the send time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from retention.templates import TONES, render

# Namespace for deterministic nudge ids: uuid5(namespace, "<source event id>:<key>").
NUDGE_NAMESPACE = UUID("6a0d3f5e-2f6b-4f0e-9a59-3c1f8f1b7d21")


class TriggerKind(StrEnum):
    EPRO_DUE = "epro-due"
    EPRO_MISSED = "epro-missed"
    VISIT_24H = "visit-reminder-24h"
    VISIT_1H = "visit-reminder-1h"
    VISIT_MISSED = "visit-missed"
    LOW_WEAR = "low-wear"
    DEVICE_SILENT = "device-silent"
    MILESTONE = "milestone"
    RECONSENT_DUE = "reconsent-due"  # a protocol amendment asks for consent again (0081)


class ChannelKind(StrEnum):
    PUSH = "push"
    SMS = "sms"
    EMAIL = "email"


class Outcome(StrEnum):
    SEND = "send"
    SUPPRESS = "suppress"
    ESCALATE = "escalate"


class SuppressReason(StrEnum):
    OPT_OUT = "opt-out"
    QUIET_HOURS = "quiet-hours"
    FREQUENCY_CAP = "frequency-cap"


@dataclass(frozen=True)
class Preferences:
    """A participant's communication preferences. quiet_start == quiet_end means none."""

    language: str = "en"
    timezone: str = "UTC"
    channel: ChannelKind = ChannelKind.PUSH
    opted_out: frozenset[ChannelKind] = frozenset()
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    max_per_day: int = 3


@dataclass(frozen=True)
class Trigger:
    """Something that may deserve a nudge. `key` makes the nudge id unique within its
    source event; `target` names what acting on the nudge means (e.g. "epro:<occurrence>")."""

    kind: TriggerKind
    participant_id: str
    source_event_id: UUID
    key: str
    at: datetime
    expires_at: datetime | None = None
    target: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    escalate: bool = False
    reason: str = ""

    @property
    def nudge_id(self) -> UUID:
        return uuid5(NUDGE_NAMESPACE, f"{self.source_event_id}:{self.key}")


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    language: str
    tone: str
    text: str
    channel: ChannelKind | None = None
    send_at: datetime | None = None
    reason: SuppressReason | None = None
    detail: str = ""


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # spans midnight


def end_of_quiet_hours(at: datetime, prefs: Preferences) -> datetime:
    """The first instant at or after `at` outside quiet hours, as an aware UTC-comparable
    datetime. Local wall time is resolved through zoneinfo, so a DST change on that night
    moves the UTC instant, and an end time inside a spring-forward gap lands just after it."""
    tz = ZoneInfo(prefs.timezone)
    local = at.astimezone(tz)
    if not in_quiet_hours(local.time(), prefs.quiet_start, prefs.quiet_end):
        return at
    end_day = local.date()
    if prefs.quiet_start > prefs.quiet_end and local.time() >= prefs.quiet_start:
        end_day += timedelta(days=1)
    wall = datetime.combine(end_day, prefs.quiet_end, tzinfo=tz)
    # Round trip through UTC normalises a non-existent wall time (inside the DST gap).
    return wall.astimezone(ZoneInfo("UTC")).astimezone(tz)


def local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


def choose_channel(prefs: Preferences) -> ChannelKind | None:
    """The preferred channel unless opted out, else the first other one still allowed."""
    order = [prefs.channel, *(c for c in ChannelKind if c is not prefs.channel)]
    return next((c for c in order if c not in prefs.opted_out), None)


def decide(
    trigger: Trigger, prefs: Preferences, scheduled: Sequence[datetime], now: datetime
) -> Decision:
    """What to do with `trigger`. `scheduled`: send times of this participant's nudges
    already sent or queued (at least the last two days), for the frequency cap."""
    language, text = render(trigger.kind, prefs.language, trigger.variables)
    tone = TONES[trigger.kind]
    if trigger.escalate:
        return Decision(Outcome.ESCALATE, language, tone, text, detail=trigger.reason)
    channel = choose_channel(prefs)
    if channel is None:
        return _suppress(SuppressReason.OPT_OUT, language, tone, text, "every channel opted out")
    send_at = end_of_quiet_hours(max(trigger.at, now), prefs)
    if trigger.expires_at is not None and send_at >= trigger.expires_at:
        detail = f"quiet hours until {send_at.isoformat()} outlast the nudge (expires {trigger.expires_at.isoformat()})"
        return _suppress(SuppressReason.QUIET_HOURS, language, tone, text, detail)
    day = local_day(send_at, prefs.timezone)
    already = sum(1 for t in scheduled if local_day(t, prefs.timezone) == day)
    if already >= prefs.max_per_day:
        detail = f"{already} nudges already on {day.isoformat()} ({prefs.timezone}), cap {prefs.max_per_day}"
        return _suppress(SuppressReason.FREQUENCY_CAP, language, tone, text, detail)
    deferred = send_at > max(trigger.at, now)
    detail = f"deferred by quiet hours to {send_at.isoformat()}" if deferred else ""
    return Decision(Outcome.SEND, language, tone, text, channel, send_at, detail=detail)


def _suppress(reason: SuppressReason, language: str, tone: str, text: str, detail: str) -> Decision:
    return Decision(Outcome.SUPPRESS, language, tone, text, reason=reason, detail=detail)

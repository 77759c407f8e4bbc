"""Key risk indicators: definitions, values from per-participant facts, status, episodes.

Pure: no database, no HTTP. Ratio KRIs are kept as (numerator, denominator) so a site's
value pools its participants (a participant with 3 due questionnaires weighs less than one
with 30), rather than averaging percentages."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from trialstream.studies import KRI_UNITS

Direction = Literal["above", "below"]
Status = Literal["green", "amber", "red", "unknown"]


@dataclass(frozen=True)
class KriDefinition:
    name: str
    label: str
    unit: str
    direction: Direction  # which way is worse


# Which way is worse comes from the table study files are checked against
# (trialstream.studies.KRI_UNITS), so a study's limits and their evaluation agree.
KRIS: Mapping[str, KriDefinition] = {
    name: KriDefinition(name, label, unit, KRI_UNITS[name][1])
    for name, label, unit in (
        ("wear_time", "Wear-time compliance (waking hours with data)", "%"),
        ("epro_on_time", "ePRO on-time completion", "%"),
        ("visit_window", "Visit-window adherence", "%"),
        ("ack_median", "Median time to acknowledge alerts", "min"),
        ("dq_flag_rate", "Data-quality flags per participant-day", "/day"),
    )
}


@dataclass(frozen=True)
class Threshold:
    amber: float
    red: float
    direction: Direction

    def status(self, value: float | None) -> Status:
        if value is None:
            return "unknown"
        if self.direction == "below":
            return "red" if value < self.red else "amber" if value < self.amber else "green"
        return "red" if value > self.red else "amber" if value > self.amber else "green"

    def as_dict(self) -> dict[str, float | str]:
        return {"amber": self.amber, "red": self.red, "direction": self.direction}


@dataclass(frozen=True)
class KriConfig:
    thresholds: Mapping[str, Threshold]
    window_days: int = 7
    epro_window_days: int = 28
    visit_window_days: int = 180
    wake_hour: int = 7
    sleep_hour: int = 22
    slot_minutes: int = 15
    min_wear_hours: float = 4.0  # less waking time observed than this: wear time unknown
    # Timeline rollups older than this are deleted by the KRI tick (no KRI reads them).
    rollup_days: float = 35.0
    # The KRIs whose thresholds a study file set (study_limits.py); the rest are the settings'.
    from_study: frozenset[str] = frozenset()


@dataclass
class ParticipantFacts:
    """What the KRIs of one participant are computed from (gathered by the repository)."""

    participant_id: str
    site_id: str
    timezone: str
    enrolled_at: datetime
    withdrawn_at: datetime | None = None
    wear_slots: Sequence[datetime] = ()  # starts of slots with at least one reading
    epro_on_time: int = 0
    epro_due: int = 0  # occurrences whose window closed (or that were answered)
    visits_in_window: int = 0
    visits_decided: int = 0  # completed or missed
    ack_minutes: Sequence[float] = ()  # acknowledged: ack - received; open: age so far
    dq_events: int = 0  # discrepancy flags + device-quality alerts


@dataclass
class Ratio:
    num: float = 0.0
    den: float = 0.0

    def percent(self) -> float | None:
        return None if self.den <= 0 else round(100.0 * self.num / self.den, 2)

    def rate(self) -> float | None:
        return None if self.den <= 0 else round(self.num / self.den, 4)


@dataclass
class KriInputs:
    wear: Ratio = field(default_factory=Ratio)
    epro: Ratio = field(default_factory=Ratio)
    visits: Ratio = field(default_factory=Ratio)
    ack_minutes: list[float] = field(default_factory=list)
    dq: Ratio = field(default_factory=Ratio)  # events / participant-days

    def add(self, other: KriInputs) -> None:
        for name in ("wear", "epro", "visits", "dq"):
            mine, theirs = getattr(self, name), getattr(other, name)
            mine.num += theirs.num
            mine.den += theirs.den
        self.ack_minutes.extend(other.ack_minutes)

    def values(self) -> dict[str, float | None]:
        return {
            "wear_time": self.wear.percent(),
            "epro_on_time": self.epro.percent(),
            "visit_window": self.visits.percent(),
            "ack_median": round(statistics.median(self.ack_minutes), 2)
            if self.ack_minutes
            else None,
            "dq_flag_rate": self.dq.rate(),
        }


def observed_span(
    facts: ParticipantFacts, now: datetime, days: int
) -> tuple[datetime, datetime] | None:
    """The part of the trailing window in which the participant was in the study."""
    start = max(now - timedelta(days=days), facts.enrolled_at)
    end = min(now, facts.withdrawn_at) if facts.withdrawn_at else now
    return (start, end) if end > start else None


def _waking_intervals(
    start: datetime, end: datetime, zone: ZoneInfo, wake: int, sleep: int
) -> Iterable[tuple[datetime, datetime]]:
    """Each local day's waking hours [wake, sleep) as aware datetimes, clipped to [start, end)."""
    day: date = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        # in UTC: subtracting two datetimes of one zone would ignore a DST change between them
        opens = datetime.combine(day, time(wake), zone).astimezone(UTC)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0), zone)
            if sleep == 24
            else datetime.combine(day, time(sleep), zone)
        ).astimezone(UTC)
        lo, hi = max(opens, start), min(closes, end)
        if hi > lo:
            yield lo, hi
        day += timedelta(days=1)


def wear_time(facts: ParticipantFacts, now: datetime, cfg: KriConfig) -> Ratio:
    """Waking slots (participant's local time) with data / waking slots while in the study.
    Waking hours follow the participant's clock, so DST days have their real length."""
    span = observed_span(facts, now, cfg.window_days)
    if span is None:
        return Ratio()
    zone = ZoneInfo(facts.timezone)
    slot = timedelta(minutes=cfg.slot_minutes)
    intervals = list(_waking_intervals(*span, zone, cfg.wake_hour, cfg.sleep_hour))
    den = sum((hi - lo) / slot for lo, hi in intervals)
    if den * cfg.slot_minutes < cfg.min_wear_hours * 60 or den <= 0:
        return Ratio()  # just enrolled (or waking hours barely begun): too early to judge
    worn = 0
    for s in set(facts.wear_slots):
        local = s.astimezone(zone)
        if span[0] - slot < s < span[1] and cfg.wake_hour <= local.hour < cfg.sleep_hour:
            worn += 1
    return Ratio(min(float(worn), den), den)


def participant_inputs(facts: ParticipantFacts, now: datetime, cfg: KriConfig) -> KriInputs:
    span = observed_span(facts, now, cfg.window_days)
    days = 0.0 if span is None else max((span[1] - span[0]) / timedelta(days=1), 1.0)
    return KriInputs(
        wear=wear_time(facts, now, cfg),
        epro=Ratio(facts.epro_on_time, facts.epro_due),
        visits=Ratio(facts.visits_in_window, facts.visits_decided),
        ack_minutes=list(facts.ack_minutes),
        dq=Ratio(facts.dq_events, days),
    )


def present(values: Mapping[str, float | None], cfg: KriConfig) -> list[dict[str, object]]:
    """The API shape of one set of KRI values, in the catalogue's order."""
    out: list[dict[str, object]] = []
    for name, definition in KRIS.items():
        threshold = cfg.thresholds[name]
        value = values.get(name)
        out.append(
            {
                "name": name,
                "label": definition.label,
                "value": value,
                "unit": definition.unit,
                "threshold": {
                    **threshold.as_dict(),
                    "source": "study" if name in cfg.from_study else "settings",
                },
                "status": threshold.status(value),
            }
        )
    return out


Transition = Literal["breach", "recover"]


def transition(breach_open: bool, status: Status) -> Transition | None:
    """A breach episode opens when a KRI turns red and lasts until it is green again: amber
    or unknown in between keep it open, so a value wobbling around the red limit is one
    breach, not many."""
    if status == "red" and not breach_open:
        return "breach"
    if status == "green" and breach_open:
        return "recover"
    return None

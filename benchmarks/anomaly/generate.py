"""Seeded generator of labelled synthetic wearable streams (see physiology.py for the model).

N participants over D days from `start` (UTC midnight), each in one of a few real IANA
timezones (daylight-saving changes within the default window are deliberate: 2026-03-29 in
Europe). Heart rate and step count every minute, SpO2, temperature and respiratory rate
every 5 minutes, each participant at their own second of the minute. Readings come out in
arrival order: measurement time across all participants, as the live topic delivers them;
`measured_at` carries the participant's local UTC offset, as a phone would send it.

Labelled events: about `events_per_participant_day` per participant-day, at least one of
every kind, none in the first `warmup_hours` (a personal baseline needs data to learn
from) or the last two hours, and at least 3 h apart within a participant. Eligibility:
baseline_shift only for resting heart rate <= 65 (so +25-35 stays under 100), bradycardia
only for resting heart rate >= 55 (32-38 is then clearly not the participant's own sleep).

Early deterioration (several vitals mildly off for hours, none over its limit) came later:
its events are drawn from a random stream of their own (seed, 1) and fitted into the gaps
the other kinds leave, and its drift is added on top of the finished normal signals, so
for a given seed every other kind, every confounder and every other value is what it was
before the kind existed. About as many as of each other kind, on randomly chosen
participants; one whose stream has no free gap long enough passes it on to the next
participant who has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

from benchmarks.anomaly.labels import MIX_ONLY_KINDS, EventKind, Label, LabelSet
from benchmarks.anomaly.physiology import (
    DAY,
    Episode,
    FloatArray,
    IntArray,
    Profile,
    Signals,
    simulate,
)

ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
METRICS: tuple[Metric, ...] = tuple(Metric)  # index = metric code in Dataset.m
US_PER_MIN = 60_000_000
DURATION_MIN = {
    EventKind.TACHYCARDIA_AT_REST: (20, 90),
    EventKind.BRADYCARDIA: (20, 60),
    EventKind.DESATURATION: (30, 120),
    EventKind.FEVER: (180, 720),
    EventKind.TACHYPNEA: (30, 120),
    EventKind.BASELINE_SHIFT: (240, 720),
    EventKind.FLATLINE: (60, 360),
    EventKind.DROPOUT: (120, 480),
    EventKind.EARLY_DETERIORATION: (240, 600),
}
LATER_KINDS = (EventKind.EARLY_DETERIORATION,)  # not in _assign: see the module docstring
ELIGIBLE = {  # resting heart-rate ranges a kind may be given to
    EventKind.BASELINE_SHIFT: (0.0, 65.0),
    EventKind.BRADYCARDIA: (55.0, 1000.0),
}
GAP_MIN, TAIL_MIN = 180, 120


@dataclass(frozen=True)
class GeneratorConfig:
    participants: int = 100
    days: int = 5
    seed: int = 7
    start: datetime = datetime(2026, 3, 26, tzinfo=UTC)
    events_per_participant_day: float = 0.5
    warmup_hours: float = 24.0


@dataclass(frozen=True)
class Participant:
    participant_id: str
    device_id: str
    zone: str
    phase_s: int  # second of the minute this device measures at
    profile: Profile


@dataclass(frozen=True)
class Dataset:
    """Readings as parallel arrays in arrival order, plus what the labels need."""

    config: GeneratorConfig
    participants: tuple[Participant, ...]
    labels: LabelSet
    p: npt.NDArray[np.int64]  # index into participants
    t_us: npt.NDArray[np.int64]  # measured_at, microseconds since the epoch (UTC)
    m: npt.NDArray[np.int64]  # index into METRICS
    v: npt.NDArray[np.float64]
    offset_min: npt.NDArray[np.int64]  # the participant's UTC offset at that moment


def _hourly_offsets(zone: str, start: datetime, hours: int) -> IntArray:
    tz = ZoneInfo(zone)
    offsets = [(start + timedelta(hours=h)).astimezone(tz).utcoffset() for h in range(hours)]
    return np.array([int(o.total_seconds() // 60) if o else 0 for o in offsets], dtype=np.int64)


def _participants(rng: np.random.Generator, n: int) -> list[Participant]:
    if n < 2:
        raise ValueError("the generator needs at least 2 participants")
    athlete = rng.random(n) < 0.15
    athlete[:2] = True, False  # someone can take a baseline shift, someone a bradycardia
    rhr = np.where(athlete, rng.uniform(42, 50, n), rng.uniform(45, 85, n))
    rhr[1] = rng.uniform(60, 85)
    return [
        Participant(
            participant_id=f"P-{i + 1:04d}",
            device_id=f"W-{i + 1:04d}",
            zone=ZONES[int(rng.integers(len(ZONES)))],
            phase_s=int(rng.integers(0, 60)),
            profile=Profile(
                resting_hr=float(rhr[i]),
                sleep_drop=float(rng.uniform(8, 12)),
                bedtime_shift=float(rng.uniform(-60, 60)),
                spo2=float(rng.uniform(96.5, 98.5)),
                temperature=float(rng.uniform(36.4, 36.9)),
                resp_rate=float(rng.uniform(12, 16)),
                phase5=int(rng.integers(0, 5)),
            ),
        )
        for i in range(n)
    ]


def _assign(
    rng: np.random.Generator, people: list[Participant], total: int
) -> list[list[EventKind]]:
    """Kinds per participant: balanced counts, every kind present, eligibility honoured."""
    n = len(people)
    kinds = [k for k in EventKind if k not in LATER_KINDS and k not in MIX_ONLY_KINDS]
    load = [kinds[i % len(kinds)] for i in range(max(total, len(kinds)))]
    order = sorted(range(len(load)), key=lambda i: (load[i] not in ELIGIBLE, rng.random()))
    rhr = np.array([p.profile.resting_hr for p in people])
    given: list[list[EventKind]] = [[] for _ in range(n)]
    for i in order:
        lo, hi = ELIGIBLE.get(load[i], (0.0, 1000.0))
        ok = np.flatnonzero((rhr >= lo) & (rhr <= hi))
        if not len(ok):
            raise ValueError(f"no participant can take a {load[i]} event")
        counts = np.array([len(given[j]) for j in ok]) + rng.random(len(ok))
        given[int(ok[np.argmin(counts)])].append(load[i])
    return given


def _place(
    rng: np.random.Generator, kinds: list[EventKind], first: int, last: int
) -> list[Episode]:
    """Random non-overlapping episodes in [first, last), GAP_MIN apart, in random order."""
    if not kinds:
        return []
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    spans = [int(rng.integers(lo, hi + 1)) for lo, hi in (DURATION_MIN[k] for k in kinds)]
    slack = last - first - sum(spans) - GAP_MIN * (len(kinds) - 1)
    if slack < 0:
        raise ValueError("too many events for the stream length: use more days")
    cuts = np.sort(rng.integers(0, slack + 1, len(kinds)))
    episodes, at = [], first
    for kind, span, cut in zip(kinds, spans, cuts.tolist(), strict=True):
        start = at + cut
        episodes.append(Episode(kind, start, start + span))
        at += span + GAP_MIN
    return episodes


def _fit(
    rng: np.random.Generator, kind: EventKind, taken: list[Episode], first: int, last: int
) -> Episode | None:
    """One episode of `kind` at a random place in [first, last) at least GAP_MIN from every
    episode in `taken`, or None when no gap is long enough."""
    lo, hi = DURATION_MIN[kind]
    span = int(rng.integers(lo, hi + 1))
    free = np.ones(last - first, dtype=np.bool_)
    for ep in taken:
        free[max(ep.start - GAP_MIN - span - first, 0) : max(ep.end + GAP_MIN - first, 0)] = False
    free[max(last - first - span, 0) :] = False
    starts = np.flatnonzero(free)
    if not len(starts):
        return None
    start = first + int(starts[int(rng.integers(len(starts)))])
    return Episode(kind, start, start + span)


Columns = tuple[IntArray, IntArray, IntArray, FloatArray]


def _readings(person: int, part: Participant, sig: Signals, start_us: int) -> Columns:
    """(p, t_us, m, v) columns of one participant's readings, dropouts left out."""
    every = np.flatnonzero(sig.present)
    fives = every[(every - part.profile.phase5) % 5 == 0]
    columns = {
        Metric.HEART_RATE: (every, sig.hr),
        Metric.STEP_COUNT: (every, sig.steps),
        Metric.OXYGEN_SATURATION: (fives, sig.spo2),
        Metric.BODY_TEMPERATURE: (fives, sig.temp),
        Metric.RESPIRATORY_RATE: (fives, sig.rr),
    }
    idx = np.concatenate([i for i, _ in columns.values()])
    m = np.concatenate([np.full(len(i), METRICS.index(k)) for k, (i, _) in columns.items()])
    v = np.concatenate([vals[i] for i, vals in columns.values()])
    t = start_us + idx * US_PER_MIN + part.phase_s * 1_000_000
    return np.full(len(idx), person), t, m, v


def generate(config: GeneratorConfig | None = None) -> Dataset:
    cfg = config or GeneratorConfig()
    rng = np.random.default_rng(cfg.seed)
    minutes = cfg.days * DAY
    people = _participants(rng, cfg.participants)
    total = round(cfg.participants * cfg.days * cfg.events_per_participant_day)
    kinds = _assign(rng, people, total)
    offsets = {z: _hourly_offsets(z, cfg.start, minutes // 60 + 1) for z in ZONES}
    start_us = int(cfg.start.timestamp()) * 1_000_000
    grid = np.arange(minutes)
    columns: list[Columns] = []
    labels: list[Label] = []
    later = np.random.default_rng([cfg.seed, 1])
    share = max(round(total / (len(EventKind) - len(LATER_KINDS) - len(MIX_ONLY_KINDS))), 1)
    given = set(later.permutation(cfg.participants)[:share].tolist())
    first, last = int(cfg.warmup_hours * 60), minutes - TAIL_MIN
    owed = 0  # events of chosen participants that did not fit: the next who can takes one
    for i, (part, own) in enumerate(zip(people, kinds, strict=True)):
        episodes = _place(rng, own, first, last)
        chosen = i in given
        added = _fit(later, LATER_KINDS[0], episodes, first, last) if chosen or owed else None
        owed += 1 if chosen and added is None else -1 if not chosen and added else 0
        local = grid + offsets[part.zone][grid // 60]
        signals = simulate(rng, part.profile, local, episodes, later, [added] if added else [])
        columns.append(_readings(i, part, signals, start_us))
        episodes = episodes + ([added] if added else [])
        labels += [
            Label(
                part.participant_id,
                ep.kind,
                cfg.start + timedelta(minutes=ep.start),
                cfg.start + timedelta(minutes=ep.end),
            )
            for ep in episodes
        ]
    p, t, m = (np.concatenate([c[k] for c in columns]) for k in range(3))
    v = np.concatenate([c[3] for c in columns])
    order = np.lexsort((m, p, t))
    zone_of = np.array([ZONES.index(x.zone) for x in people])
    table = np.stack([offsets[z] for z in ZONES])
    hour = (t[order] - start_us) // (60 * US_PER_MIN)
    labels.sort(key=lambda lab: (lab.start, lab.participant_id))
    return Dataset(
        config=cfg,
        participants=tuple(people),
        labels=LabelSet(cfg.seed, cfg.participants, cfg.days, tuple(labels)),
        p=p[order],
        t_us=t[order],
        m=m[order],
        v=v[order],
        offset_min=table[zone_of[p[order]], hour],
    )

"""A realistic device mix (issue 21): the fleet a DCT actually gets, labelled.

Physiology is drawn on a minute grid (physiology.py's helpers: sleep by the participant's
own timezone, circadian swing, AR(1) noise), then each device samples it at its own
cadence (devices.py) with per-reading noise. On top of that fleet:
- exercise for everyone, steps or not (heart rate +25-65, breathing +4-8, skin temperature
  up a little), walks; beta-blocked participants rest at 50-55 and respond half as much;
- sleep-apnea-like dips (SpO2 88-91 % for 1-3 min, many a night) on a fifth of the fleet;
- single-sample artefacts while moving: heart rate 160-210, SpO2 80-88;
- upload gaps (unlabelled, under 25 min) and lost samples; labelled dropouts (>= 60 min).

Labelled events use the trial definitions: tachycardia at rest >= 120, bradycardia <= 40,
SpO2 <= 91 held for 15-120 min, fever >= 38.0 C, respiratory rate >= 25, irregular rhythm
(mean 100-140, very irregular reading to reading, 30-180 min), baseline shift (+15 to +25
beats/min for 6-24 h, under every limit; 40 % followed hours later by a fever). An event's
start is when the signal first meets its definition: for the limit kinds the first second
at which a reading (without its measurement noise, at the device's resolution) would meet
it, which lies inside the minute before the event's first whole minute, since readings
between minutes interpolate the signal (decision 0089: until 2026-12-04 the label said the
whole minute, and a sparse device's reading of 38.0 C 15 s earlier raised an alert the
evaluator counted as false and the fever as missed). Events only go to participants
whose device measures the metric (a shift's follow-on fever is labelled only where the
device measures temperature: before 2026-12-04 it was labelled on chest straps too, eight
misses a seed pair no scorer could avoid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from trialstream.events.readings import Metric

from benchmarks.anomaly.devices import Device, DeviceType, draw_device, sample_times
from benchmarks.anomaly.generate import (
    METRICS,
    ZONES,
    Dataset,
    GeneratorConfig,
    Participant,
    _hourly_offsets,
)
from benchmarks.anomaly.labels import EventKind, Label, LabelSet
from benchmarks.anomaly.physiology import (
    DAY,
    BoolArray,
    FloatArray,
    IntArray,
    Profile,
    _ar1,
    _asleep,
    _bouts,
    _lag,
)

HR, SPO2, TEMP, RR, STEPS = (
    Metric.HEART_RATE,
    Metric.OXYGEN_SATURATION,
    Metric.BODY_TEMPERATURE,
    Metric.RESPIRATORY_RATE,
    Metric.STEP_COUNT,
)
DURATION_MIN = {
    EventKind.TACHYCARDIA_AT_REST: (15, 90),
    EventKind.BRADYCARDIA: (15, 60),
    EventKind.DESATURATION: (15, 120),
    EventKind.FEVER: (180, 600),
    EventKind.TACHYPNEA: (20, 120),
    EventKind.IRREGULAR_RHYTHM: (30, 180),
    EventKind.BASELINE_SHIFT: (360, 1440),
    EventKind.DROPOUT: (60, 240),
}
NEEDS = {EventKind.DESATURATION: SPO2, EventKind.FEVER: TEMP, EventKind.TACHYPNEA: RR}
KINDS = tuple(DURATION_MIN)
# The limit kinds' definitions: metric, threshold, and whether a high value meets it.
DEFINITION = {
    EventKind.TACHYCARDIA_AT_REST: (HR, 120.0, True),
    EventKind.BRADYCARDIA: (HR, 40.0, False),
    EventKind.DESATURATION: (SPO2, 91.0, False),
    EventKind.FEVER: (TEMP, 38.0, True),
    EventKind.TACHYPNEA: (RR, 25.0, True),
}
GAP_MIN = 120
FEVER_TAIL_MIN = 600  # room after a baseline shift for the fever that may follow


@dataclass(frozen=True)
class Traits:
    device: Device
    beta_blocked: bool
    apnea: bool


@dataclass(frozen=True)
class Mix:
    dataset: Dataset
    traits: dict[str, Traits]  # by participant id

    def device_of(self, participant_id: str) -> DeviceType:
        return self.traits[participant_id].device.kind


@dataclass
class _Grid:
    hr: FloatArray
    spo2: FloatArray
    temp: FloatArray
    rr: FloatArray
    steps: FloatArray
    moving: BoolArray
    asleep: BoolArray
    af_sd: FloatArray  # per minute: reading-to-reading spread of an irregular rhythm (0: none)


def _people(rng: np.random.Generator, n: int) -> list[tuple[Participant, Traits]]:
    out = []
    for i in range(n):
        device = draw_device(rng)
        beta = bool(rng.random() < 0.1)
        rhr = float(rng.uniform(50, 55) if beta else rng.uniform(48, 82))
        profile = Profile(
            resting_hr=rhr,
            sleep_drop=float(rng.uniform(6, 11) * (0.5 if beta else 1)),
            bedtime_shift=float(rng.uniform(-60, 60)),
            spo2=float(rng.uniform(96, 98.5)),
            temperature=float(rng.uniform(36.4, 36.9)),
            resp_rate=float(rng.uniform(12, 16)),
            phase5=0,
        )
        part = Participant(
            f"P-{i + 1:04d}", f"D-{i + 1:04d}", ZONES[int(rng.integers(len(ZONES)))], 0, profile
        )
        out.append((part, Traits(device, beta, bool(rng.random() < 0.2))))
    return out


def _eligible(kind: EventKind, part: Participant, traits: Traits) -> bool:
    metric = NEEDS.get(kind)
    if metric is not None and not traits.device.measures(metric):
        return False
    rhr = part.profile.resting_hr
    if kind is EventKind.BASELINE_SHIFT:
        return rhr <= 74  # +25 stays under the tachycardia limit
    return kind is not EventKind.BRADYCARDIA or rhr >= 50


def _assign(
    rng: np.random.Generator, people: list[tuple[Participant, Traits]], total: int
) -> list[list[EventKind]]:
    given: list[list[EventKind]] = [[] for _ in people]
    for i in range(total):
        kind = KINDS[i % len(KINDS)]
        ok = [j for j, (p, t) in enumerate(people) if _eligible(kind, p, t)]
        load = np.array([len(given[j]) for j in ok]) + rng.random(len(ok))
        given[ok[int(np.argmin(load))]].append(kind)
    return given


def _place(
    rng: np.random.Generator, kinds: list[EventKind], first: int, last: int
) -> list[tuple[EventKind, int, int]]:
    """Non-overlapping episodes in [first, last), GAP_MIN apart; ones that do not fit are
    dropped (and so never labelled)."""
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    spans = [int(rng.integers(*DURATION_MIN[k])) for k in kinds]
    pads = [FEVER_TAIL_MIN if k is EventKind.BASELINE_SHIFT else 0 for k in kinds]
    while kinds and sum(spans) + sum(pads) + GAP_MIN * len(kinds) > last - first:
        kinds, spans, pads = kinds[:-1], spans[:-1], pads[:-1]
    slack = last - first - sum(spans) - sum(pads) - GAP_MIN * len(kinds)
    cuts = np.sort(rng.integers(0, slack + 1, len(kinds))) if kinds else []
    out, at = [], first
    for kind, span, pad, cut in zip(kinds, spans, pads, list(cuts), strict=True):
        start = at + int(cut)
        out.append((kind, start, start + span))
        at += span + pad + GAP_MIN
    return out


def _normal(
    rng: np.random.Generator, part: Participant, traits: Traits, local: IntArray, near: BoolArray
) -> _Grid:
    """Normal physiology; walks and exercise keep clear of labelled events (`near`), so an
    alert on an event is about the event."""
    p, n = part.profile, len(local)
    asleep = _asleep(rng, local, p.bedtime_shift)
    hour = (local % DAY) / 60.0
    awake_day = ~asleep & (hour >= 7) & (hour < 22) & ~near
    days = -(-n // DAY)
    steps = np.where(~asleep & (rng.random(n) < 0.3), rng.poisson(6, n), 0).astype(np.float64)
    effort, breath = np.zeros(n), np.zeros(n)
    for s, e in _bouts(rng, awake_day, 6 * days, 3, 15):  # walks
        steps[s:e] = np.maximum(rng.normal(100, 8, e - s), 0)
        effort[s:e] = rng.uniform(10, 20)
        breath[s:e] = rng.uniform(1, 3)
    for s, e in _bouts(rng, awake_day, int(rng.integers(1, 3, days).sum()), 20, 75):
        steps[s:e] = np.clip(rng.normal(rng.uniform(95, 165), 5, e - s), 90, 170)
        effort[s:e] = rng.uniform(25, 65)
        breath[s:e] = rng.uniform(4, 8)
    blunt = 0.5 if traits.beta_blocked else 1.0
    work, puff = _lag(effort * blunt, 2.5), _lag(breath, 2.5)
    sleep = _lag(np.where(asleep, 1.0, 0.0), 10)
    circadian = np.sin(2 * np.pi * (hour - 10) / 24)
    hr = np.maximum(p.resting_hr + 3 * circadian - p.sleep_drop * sleep, min(45.0, p.resting_hr))
    return _Grid(
        hr=hr + work + _ar1(rng, n, 2.2) * (1 - 0.3 * sleep),
        spo2=p.spo2 - 0.8 * sleep + rng.normal(0, 0.5, n),
        temp=p.temperature
        + 0.25 * np.sin(2 * np.pi * (hour - 12) / 24)
        - 0.15 * sleep
        + 0.005 * work
        + rng.normal(0, 0.05, n),
        rr=p.resp_rate - 1.5 * sleep + puff + rng.normal(0, 0.6, n),
        steps=steps,
        moving=(steps > 50) | (work > 10),
        asleep=asleep,
        af_sd=np.zeros(n),
    )


def _fever(rng: np.random.Generator, g: _Grid, a: int, b: int) -> None:
    """>= 38.0 exactly inside [a, b): ramps up in the hour before, down in the hour after."""
    n, end = b - a, min(b + 60, len(g.temp))
    before = g.temp[a - 60 : end].copy()
    peak = rng.uniform(38.5, 39.4)
    shape = np.clip(np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.25 * n), 0, 1)
    inside = np.clip(38.1 + (peak - 38.1) * shape + rng.normal(0, 0.04, n), 38.05, 39.5)
    pre, post = np.linspace(before[0], 37.8, 60), np.linspace(37.8, before[-1], end - b)
    g.temp[a - 60 : end] = np.concatenate([pre, inside, post])
    rise = np.maximum(g.temp[a - 60 : end] - before, 0)
    g.hr[a - 60 : end] += 10 * rise
    g.rr[a - 60 : end] += 2 * rise


def _event(
    rng: np.random.Generator, g: _Grid, kind: EventKind, a: int, b: int
) -> list[tuple[EventKind, int, int]]:
    """Apply one event to the grid; returns the labels it makes (a shift may add a fever)."""
    n = b - a
    g.moving[a:b] = False
    if kind is EventKind.TACHYCARDIA_AT_REST:
        g.hr[a:b] = np.clip(rng.uniform(124, 145) + rng.normal(0, 3, n), 120, 155)
        g.steps[a:b], g.rr[a:b] = 0, g.rr[a:b] + 1.5
    elif kind is EventKind.BRADYCARDIA:
        g.hr[a:b] = np.clip(rng.uniform(34, 38) + rng.normal(0, 1, n), 31, 39.4)
        g.steps[a:b] = 0
    elif kind is EventKind.DESATURATION:
        g.spo2[a:b] = np.clip(rng.uniform(86, 90) + rng.normal(0, 0.8, n), 84, 91.4)
        g.hr[a:b] += 6
    elif kind is EventKind.FEVER:
        _fever(rng, g, a, b)
    elif kind is EventKind.TACHYPNEA:
        g.rr[a:b] = np.clip(rng.uniform(26, 30) + rng.normal(0, 0.8, n), 25, 32)
        g.steps[a:b], g.hr[a:b] = 0, g.hr[a:b] + 8
    elif kind is EventKind.IRREGULAR_RHYTHM:
        g.hr[a:b] = rng.uniform(100, 140)
        g.af_sd[a:b] = rng.uniform(12, 20)
        g.steps[a:b] = 0
    elif kind is EventKind.BASELINE_SHIFT:
        ramp = np.clip(np.arange(n) / 20, 0, 1)  # in over 20 min
        g.hr[a:b] = np.minimum(g.hr[a:b] + ramp * rng.uniform(15, 25), 108)
        if rng.random() < 0.4:
            f0 = a + int(rng.integers(240, max(n, 300)))
            f1 = min(f0 + int(rng.integers(120, 360)), len(g.temp) - 60)
            if f1 - f0 >= 60:
                _fever(rng, g, f0, f1)
                return [(kind, a, b), (EventKind.FEVER, f0, f1)]
    return [(kind, a, b)]


def _apnea(rng: np.random.Generator, g: _Grid, near: BoolArray) -> None:
    """15-40 brief dips a night to 88-91 %, 1-3 min each: not events."""
    sleep = np.flatnonzero(g.asleep & ~near)
    nights = max(len(sleep) // 450, 1)
    for s in rng.choice(sleep, size=min(nights * int(rng.integers(15, 41)), len(sleep))):
        d = int(rng.integers(1, 4))
        g.spo2[s : s + d] = rng.uniform(88, 91.4)


def _reported(metric: Metric, v: FloatArray) -> FloatArray:
    """Values at the resolution and range the devices report them."""
    if metric is HR:
        return np.clip(np.rint(v), 25, 220)
    if metric is SPO2:
        return np.clip(np.rint(v), 50, 100)
    if metric is TEMP:
        return np.round(v, 2)
    if metric is RR:
        return np.clip(np.round(v, 1), 4, 60)
    return np.rint(v)


def onset_s(g: _Grid, kind: EventKind, a: int) -> int:
    """The second the signal first meets `kind`'s definition for an event from minute `a`:
    readings interpolate the minute grid, so in the minute before `a` a reading (without
    its measurement noise, as the device reports it) already meets it once the line has
    crossed the threshold."""
    if kind not in DEFINITION or a == 0:
        return 60 * a
    metric, threshold, high = DEFINITION[kind]
    grid = {HR: g.hr, SPO2: g.spo2, TEMP: g.temp, RR: g.rr}[metric]
    seconds = np.arange(60 * (a - 1), 60 * a + 1)
    v = _reported(metric, np.interp(seconds / 60.0, [a - 1, a], grid[a - 1 : a + 1]))
    meets = np.flatnonzero(v >= threshold if high else v <= threshold)
    return int(seconds[meets[0]]) if len(meets) else 60 * a


Cols = tuple[IntArray, IntArray, IntArray, FloatArray]


def _sample(
    rng: np.random.Generator, person: int, g: _Grid, traits: Traits, gaps: BoolArray
) -> Cols:
    """Readings of one participant: each metric at the device's own times, per-reading noise,
    artefacts while moving, nothing inside upload gaps."""
    span_s, out = len(g.hr) * 60, []
    source = {HR: g.hr, SPO2: g.spo2, TEMP: g.temp, RR: g.rr, STEPS: g.steps}
    for metric, grid in source.items():
        if not traits.device.measures(metric):
            continue
        t = sample_times(rng, traits.device, metric, span_s, g.asleep)
        t = t[~gaps[t // 60]]
        minute = t // 60
        if metric is STEPS:
            v = np.rint(grid[minute])
        else:
            v = np.interp(t / 60.0, np.arange(len(grid)), grid)
        if metric is HR:
            noise = 1.5 if traits.device.kind is DeviceType.STRAP else 1.0
            v = v + rng.normal(0, 1, len(t)) * np.maximum(noise, g.af_sd[minute])
            moving = np.flatnonzero(g.moving[minute])
            hit = rng.choice(moving, size=min(len(moving), 4 * (span_s // 86_400)), replace=False)
            v[hit] = rng.integers(160, 211, len(hit))
        elif metric is SPO2:
            v = v + rng.normal(0, 0.3, len(t))
            moving = np.flatnonzero(g.moving[minute])
            hit = rng.choice(moving, size=min(len(moving), 2 * (span_s // 86_400)), replace=False)
            v[hit] = rng.integers(80, 89, len(hit))
        out.append((t, np.full(len(t), METRICS.index(metric)), _reported(metric, v)))
    t = np.concatenate([o[0] for o in out])
    return (
        np.full(len(t), person),
        t,
        np.concatenate([o[1] for o in out]),
        np.concatenate([o[2] for o in out]),
    )


def _upload_gaps(rng: np.random.Generator, n: int, dropouts: list[tuple[int, int]]) -> BoolArray:
    gaps = np.zeros(n, dtype=np.bool_)
    for s in rng.integers(0, n - 30, int(rng.poisson(1.5 * n / DAY))).tolist():
        gaps[s : s + int(rng.integers(3, 25))] = True
    for a, b in dropouts:
        gaps[a:b] = True
    return gaps


def generate_mix(config: GeneratorConfig) -> Mix:
    rng = np.random.default_rng([config.seed, 21])
    minutes = config.days * DAY
    people = _people(rng, config.participants)
    total = round(config.participants * config.days * config.events_per_participant_day)
    kinds = _assign(rng, people, total)
    offsets = {z: _hourly_offsets(z, config.start, minutes // 60 + 1) for z in ZONES}
    grid = np.arange(minutes)
    start_us = int(config.start.timestamp()) * 1_000_000
    cols: list[Cols] = []
    labels: list[Label] = []
    first = int(max(config.warmup_hours, 36) * 60)
    for i, ((part, traits), own) in enumerate(zip(people, kinds, strict=True)):
        local = grid + offsets[part.zone][grid // 60]
        placed = _place(rng, own, first, minutes - 180)
        near = np.zeros(minutes, dtype=np.bool_)
        for k, a, b in placed:
            tail = FEVER_TAIL_MIN if k is EventKind.BASELINE_SHIFT else 0
            near[max(a - 60, 0) : b + tail + 90] = True
        g = _normal(rng, part, traits, local, near)
        made = [
            lab
            for k, a, b in placed
            if k is not EventKind.DROPOUT
            for lab in _event(rng, g, k, a, b)
        ]
        # a shift's follow-on fever happens to everyone (heart rate and breathing rise
        # with it) but is an event only where the device measures temperature, like
        # every other event of a metric (a chest strap cannot see a fever)
        made = [lab for lab in made if lab[0] not in NEEDS or traits.device.measures(NEEDS[lab[0]])]
        if traits.apnea and traits.device.measures(SPO2):
            _apnea(rng, g, near)
        dropouts = [(a, b) for k, a, b in placed if k is EventKind.DROPOUT]
        made += [(EventKind.DROPOUT, a, b) for a, b in dropouts]
        cols.append(_sample(rng, i, g, traits, _upload_gaps(rng, minutes, dropouts)))
        labels += [
            Label(
                part.participant_id,
                k,
                config.start + timedelta(seconds=onset_s(g, k, a)),
                config.start + timedelta(minutes=b),
            )
            for k, a, b in made
        ]
    p, t_s, m = (np.concatenate([c[k] for c in cols]) for k in range(3))
    v = np.concatenate([c[3] for c in cols])
    t = start_us + t_s * 1_000_000
    order = np.lexsort((m, p, t))
    zone_of = np.array([ZONES.index(x.zone) for x, _ in people])
    table = np.stack([offsets[z] for z in ZONES])
    hour = (t[order] - start_us) // 3_600_000_000
    labels.sort(key=lambda lab: (lab.start, lab.participant_id))
    dataset = Dataset(
        config=config,
        participants=tuple(x for x, _ in people),
        labels=LabelSet(config.seed, config.participants, config.days, tuple(labels)),
        p=p[order],
        t_us=t[order],
        m=m[order],
        v=v[order],
        offset_min=table[zone_of[p[order]], hour],
    )
    return Mix(dataset, {x.participant_id: tr for x, tr in people})

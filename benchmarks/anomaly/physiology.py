"""One participant's minute grid: normal physiology, confounders, then labelled events.

Index i of every array is minute i of the stream (UTC); `local_min` maps it to absolute
minutes of the participant's wall clock, so sleep and circadian rhythm follow their
timezone, daylight-saving changes included.

Normal physiology: a personal resting heart rate, ~8-12 beats/min lower asleep (the mean
never below 45, or below the resting rate if that is lower: an athlete sleeping at 34 would
be indistinguishable from the bradycardia events), a circadian swing, AR(1) heart-rate
noise (30% smaller asleep); sporadic steps while awake. Athletes at 42-44 still dip to 40
and below now and then: a NEWS2 limit alone cries wolf there, a personal baseline need not.
Confounders that must not alert: walking bouts, 1-2 exercise bouts a day (90-170 steps/min,
heart rate +40-70 with a lagged rise and recovery, faster breathing), sleep, and lone
motion artefacts (a heart-rate spike to 150-190, an SpO2 dip to 84-88). Confounders keep
away from labelled events (60 min before to 90 min after), so that an alert on an event is
about the event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from benchmarks.anomaly.labels import EventKind

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
DAY = 1440
SLEEP_HR_FLOOR = 45.0


@dataclass(frozen=True)
class Profile:
    resting_hr: float
    sleep_drop: float
    bedtime_shift: float  # minutes after 23:00 local this participant usually sleeps
    spo2: float
    temperature: float
    resp_rate: float
    phase5: int  # minute (mod 5) of the five-minutely readings


@dataclass(frozen=True)
class Episode:
    kind: EventKind
    start: int  # first minute of the episode
    end: int  # first minute after it


@dataclass
class Signals:
    hr: FloatArray
    spo2: FloatArray
    temp: FloatArray
    rr: FloatArray
    steps: FloatArray
    present: BoolArray  # False inside a dropout: nothing is sent


def _lag(x: FloatArray, tau: float) -> FloatArray:
    """Causal first-order lag (time constant tau minutes): gradual rise and recovery."""
    kernel = np.exp(-np.arange(int(6 * tau) + 1) / tau)
    out: FloatArray = np.convolve(x, kernel / kernel.sum())[: len(x)]
    return out


def _ar1(rng: np.random.Generator, n: int, sd: float, phi: float = 0.85) -> FloatArray:
    burn = 60
    w = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n + burn)
    out: FloatArray = np.convolve(w, phi ** np.arange(burn))[burn : burn + n]
    return out


def _asleep(rng: np.random.Generator, local_min: IntArray, shift: float) -> BoolArray:
    """Nights anchored at local noon: asleep from ~23:00 to ~07:00, jittered per night."""
    night = (local_min - 720) // DAY
    first = int(night.min())
    count = int(night.max()) - first + 1
    onset = 660 + shift + rng.normal(0, 20, count)  # minutes after the night's noon
    wake = 1140 + shift + rng.normal(0, 20, count)
    into = local_min - 720 - night * DAY
    k = night - first
    result: BoolArray = (into >= onset[k]) & (into < wake[k])
    return result


def _bouts(
    rng: np.random.Generator, allowed: BoolArray, count: int, lo: int, hi: int
) -> list[tuple[int, int]]:
    """Up to `count` non-overlapping bouts of lo-hi minutes inside `allowed`."""
    free, n = allowed.copy(), len(allowed)
    found: list[tuple[int, int]] = []
    for _ in range(count * 40):
        if len(found) == count or n <= hi:
            break
        s, d = int(rng.integers(0, n - hi)), int(rng.integers(lo, hi + 1))
        if free[s : s + d].all():
            found.append((s, s + d))
            free[max(s - 15, 0) : s + d + 15] = False
    return found


def _near(n: int, episodes: list[Episode]) -> BoolArray:
    near = np.zeros(n, dtype=np.bool_)
    for ep in episodes:
        near[max(ep.start - 60, 0) : ep.end + 90] = True
    return near


def _normal(rng: np.random.Generator, p: Profile, local_min: IntArray, near: BoolArray) -> Signals:
    n = len(local_min)
    asleep = _asleep(rng, local_min, p.bedtime_shift)
    hour = (local_min % DAY) / 60.0
    free = ~asleep & (hour >= 8) & (hour < 21) & ~near
    days = -(-n // DAY)
    steps = np.where(~asleep & (rng.random(n) < 0.3), rng.poisson(6, n), 0).astype(np.float64)
    effort = np.zeros(n)
    for s, e in _bouts(rng, free, 6 * days, 3, 15):  # walks
        steps[s:e] = np.maximum(rng.normal(100, 8, e - s), 0)
        effort[s:e] = rng.uniform(10, 25)
    for s, e in _bouts(rng, free, int(rng.integers(1, 3, days).sum()), 20, 60):  # exercise
        steps[s:e] = np.clip(rng.normal(rng.uniform(95, 165), 5, e - s), 90, 170)
        effort[s:e] = rng.uniform(40, 70)
    work = _lag(effort, 2.5)
    sleep = _lag(np.where(asleep, 1.0, 0.0), 10)
    circadian = np.sin(2 * np.pi * (hour - 10) / 24)
    calm = 1 - 0.3 * sleep  # sleeping heart rate is steadier
    floor = min(SLEEP_HR_FLOOR, p.resting_hr)
    return Signals(
        hr=np.maximum(p.resting_hr + 3 * circadian - p.sleep_drop * sleep, floor)
        + work
        + _ar1(rng, n, 2.2) * calm,
        spo2=p.spo2 - 0.8 * sleep + rng.normal(0, 0.6, n),
        temp=p.temperature
        + 0.25 * np.sin(2 * np.pi * (hour - 12) / 24)
        - 0.15 * sleep
        + 0.004 * work
        + rng.normal(0, 0.06, n),
        rr=p.resp_rate - 1.5 * sleep + 0.15 * work + rng.normal(0, 0.7, n),
        steps=steps,
        present=np.ones(n, dtype=np.bool_),
    )


def _fever(rng: np.random.Generator, s: Signals, ep: Episode) -> None:
    """Temperature ramps to 37.9 in the hour before `start`, stays in 38.3-39.5 (rising to a
    peak and falling) until `end`, then falls back within the hour: only the labelled
    window is at or above 38.1."""
    a, b, n = ep.start, ep.end, ep.end - ep.start
    window = slice(a - 60, b + 60)
    before = s.temp[window].copy()
    peak = rng.uniform(38.7, 39.5)
    shape = np.clip(np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.25 * n), 0, 1)
    inside = np.clip(38.3 + (peak - 38.3) * shape + rng.normal(0, 0.05, n), 38.3, 39.5)
    pre, post = np.linspace(before[0], 37.9, 60), np.linspace(37.9, before[-1], 60)
    s.temp[window] = np.concatenate([pre, inside, post])
    rise = np.maximum(s.temp[window] - before, 0)
    s.hr[window] += 10 * rise  # about 10 beats/min per degree, as in life
    s.rr[window] += 2 * rise


def _clinical(rng: np.random.Generator, s: Signals, ep: Episode, p: Profile) -> None:
    a, b, n, k = ep.start, ep.end, ep.end - ep.start, ep.kind
    if k is EventKind.TACHYCARDIA_AT_REST:
        s.hr[a:b] = np.clip(rng.uniform(125, 145) + rng.normal(0, 3, n), 120, 150)
        s.steps[a:b] = 0
        s.rr[a:b] += 2
    elif k is EventKind.BRADYCARDIA:
        s.hr[a:b] = np.clip(rng.uniform(33, 37) + rng.normal(0, 1, n), 32, 38)
        s.steps[a:b] = 0
    elif k is EventKind.DESATURATION:
        s.spo2[a:b] = np.clip(rng.uniform(87, 90) + rng.normal(0, 1, n), 86, 91)
        s.hr[a:b] += 6
    elif k is EventKind.TACHYPNEA:
        s.rr[a:b] = np.clip(rng.uniform(25, 29) + rng.normal(0, 1, n), 24, 30)
        s.steps[a:b] = 0
        s.hr[a:b] += 8
    elif k is EventKind.BASELINE_SHIFT:
        shift = rng.uniform(25, max(25.0, min(35.0, 90 - p.resting_hr)))
        s.hr[a:b] = np.minimum(s.hr[a:b] + shift, 99)  # personal, yet under every limit


def _round(s: Signals) -> None:
    s.hr = np.rint(s.hr)
    s.spo2 = np.clip(np.rint(s.spo2), 50, 100)
    s.temp = np.round(s.temp, 2)
    s.rr = np.clip(np.round(s.rr, 1), 4, 60)
    s.steps = np.rint(s.steps)


def _artefacts(rng: np.random.Generator, s: Signals, near: BoolArray, phase5: int) -> None:
    n = len(near)
    days = -(-n // DAY)
    spots = np.flatnonzero(~near)
    for i in rng.choice(spots, size=min(2 * days, len(spots)), replace=False):
        s.hr[i] = float(rng.integers(150, 191))  # motion artefact: one sample
    fives = spots[(spots - phase5) % 5 == 0]
    for i in rng.choice(fives, size=min(days, len(fives)), replace=False):
        s.spo2[i] = float(rng.integers(84, 89))


def _deterioration(rng: np.random.Generator, s: Signals, ep: Episode, p: Profile) -> None:
    """Early deterioration: heart rate up 12-18 beats/min, SpO2 down 1.5-3 points,
    temperature up 0.35-0.7 C and breathing up 2.5-5 breaths/min at once, each capped so
    that its mean stays clear of its NEWS2 limit (heart rate <= 97, SpO2 >= 95 awake,
    temperature <= 37.75 in the afternoon, breathing <= 19), ramping in over the first
    30 min and out over 30 min after `end`. No single vital looks alarming; together, for
    hours, they are how infection or decompensation often begins."""
    a, b = ep.start, ep.end
    n = min(b + 30, len(s.hr)) - a
    ramp = np.clip(np.minimum(np.arange(n) + 1, b + 30 - a - np.arange(n)) / 30, 0, 1)
    s.hr[a : a + n] += ramp * min(rng.uniform(12, 18), max(8.0, 97 - p.resting_hr))
    s.spo2[a : a + n] -= ramp * min(rng.uniform(2, 3), max(1.5, p.spo2 - 95))
    s.temp[a : a + n] += ramp * min(rng.uniform(0.5, 0.7), max(0.35, 37.5 - p.temperature))
    s.rr[a : a + n] += ramp * min(rng.uniform(3, 5), max(2.5, 19 - p.resp_rate))


def simulate(
    rng: np.random.Generator,
    profile: Profile,
    local_min: IntArray,
    episodes: list[Episode],
    later_rng: np.random.Generator | None = None,
    later: list[Episode] | tuple[Episode, ...] = (),
) -> Signals:
    """Minute signals of one participant with its episodes applied (values as sent).
    `later` episodes (early deterioration) draw from `later_rng` and leave everything
    drawn from `rng` (confounders included) as it would be without them."""
    near = _near(len(local_min), episodes)
    signals = _normal(rng, profile, local_min, near)
    for ep in episodes:
        if ep.kind is EventKind.FEVER:
            _fever(rng, signals, ep)
        else:
            _clinical(rng, signals, ep, profile)  # device kinds come after rounding
    for ep in later:
        if later_rng is None:
            raise ValueError("later episodes need their own random stream")
        _deterioration(later_rng, signals, ep, profile)
    _round(signals)
    _artefacts(rng, signals, near, profile.phase5)
    for ep in episodes:
        if ep.kind is EventKind.FLATLINE:
            signals.hr[ep.start : ep.end] = signals.hr[ep.start]
        elif ep.kind is EventKind.DROPOUT:
            signals.present[ep.start : ep.end] = False
    return signals

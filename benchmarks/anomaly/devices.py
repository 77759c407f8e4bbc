"""Device profiles of a real DCT fleet: what each sends, how often, and how it loses data.

A device is a cadence per metric (seconds between readings, a range the participant's own
device settles in, with jitter), whether it sends steps, and how it loses samples. Times
are whole seconds (the device contract's measured_at has second resolution here).

- chest strap: heart rate every 5-10 s with 1-s bursts, respiratory rate (from the ECG)
  every minute; steps only when a paired phone counts them.
- watch: heart rate every minute; SpO2 every 5 min awake and every minute asleep;
  temperature and respiratory rate every 5-10 min; steps every minute unless switched off.
- spot-check: heart rate every 5-15 min; SpO2, temperature and respiratory rate every
  15-60 min each; no steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class DeviceType(StrEnum):
    STRAP = "chest-strap"
    WATCH = "watch"
    SPOT = "spot-check"


# Share of the fleet, and the chance that a participant of this type sends no steps; the
# spot-check kits never do. About a fifth of the fleet sends no steps at all.
FLEET = {DeviceType.STRAP: 0.2, DeviceType.WATCH: 0.66, DeviceType.SPOT: 0.14}
NO_STEPS = {DeviceType.STRAP: 0.15, DeviceType.WATCH: 0.06, DeviceType.SPOT: 1.0}
LOST = {DeviceType.STRAP: 0.03, DeviceType.WATCH: 0.03, DeviceType.SPOT: 0.02}


@dataclass(frozen=True)
class Device:
    kind: DeviceType
    steps: bool
    cadence_s: dict[Metric, float]  # this participant's own typical interval per metric

    def measures(self, metric: Metric) -> bool:
        return metric in self.cadence_s


def draw_device(rng: np.random.Generator) -> Device:
    kind = DeviceType(rng.choice(list(FLEET), p=list(FLEET.values())))
    steps = bool(rng.random() >= NO_STEPS[kind])
    hr, sp, tp, rr = (
        Metric.HEART_RATE,
        Metric.OXYGEN_SATURATION,
        Metric.BODY_TEMPERATURE,
        Metric.RESPIRATORY_RATE,
    )
    cadence: dict[Metric, float]
    if kind is DeviceType.STRAP:
        cadence = {hr: float(rng.uniform(5, 10)), rr: 60.0}
    elif kind is DeviceType.WATCH:
        cadence = {hr: 60.0, sp: 300.0, tp: float(rng.choice([300, 600])), rr: 300.0}
    else:
        cadence = {hr: 60 * float(rng.uniform(5, 15))}
        cadence |= {m: 60 * float(rng.uniform(15, 60)) for m in (sp, tp, rr)}
    if steps:
        cadence[Metric.STEP_COUNT] = 60.0
    return Device(kind, steps, cadence)


def _jittered(rng: np.random.Generator, span_s: int, every: float, jitter: float) -> IntArray:
    """Sample times in [0, span_s): intervals of `every` +/- `jitter` (a fraction)."""
    count = int(span_s / every * 1.2) + 2
    steps = every * rng.uniform(1 - jitter, 1 + jitter, count)
    t = np.cumsum(steps) - steps[0] * rng.random()
    keep: IntArray = np.unique(np.rint(t[t >= 0]).astype(np.int64))
    return keep[keep < span_s]


def _bursts(rng: np.random.Generator, span_s: int) -> IntArray:
    """Chest straps switch to a reading a second now and then (a few dozen bursts a day)."""
    count = int(rng.poisson(30 * span_s / 86_400))
    starts = rng.integers(0, max(span_s - 120, 1), count)
    lengths = rng.integers(10, 90, count)
    out = [np.arange(s, s + n) for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]
    return np.concatenate(out).astype(np.int64) if out else np.empty(0, np.int64)


def sample_times(
    rng: np.random.Generator, device: Device, metric: Metric, span_s: int, asleep: BoolArray
) -> IntArray:
    """Seconds (from the stream start) at which the device measures `metric`; `asleep` is
    per minute. Lost samples are dropped here; upload gaps are cut by the caller."""
    every = device.cadence_s[metric]
    jitter = 0.3 if device.kind is DeviceType.SPOT else 0.1
    t = _jittered(rng, span_s, every, jitter)
    if device.kind is DeviceType.WATCH and metric is Metric.OXYGEN_SATURATION:
        night = _jittered(rng, span_s, 60.0, 0.05)
        t = np.union1d(t[~asleep[t // 60]], night[asleep[night // 60]])
    if device.kind is DeviceType.STRAP and metric is Metric.HEART_RATE:
        burst = _bursts(rng, span_s)
        t = np.union1d(t, burst[burst < span_s])
    if metric is not Metric.STEP_COUNT:
        t = t[rng.random(len(t)) >= LOST[device.kind]]
    return t

"""Reading streams for the anomaly tests and the replay benchmark (helpers, not tests)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from anomaly.columns import Columns
from anomaly.config import METRIC_CODE
from trialstream.events.readings import UNITS, Metric, ReadingReceived

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def stream(
    metric: Metric,
    values: Sequence[float],
    *,
    every_min: float = 1,
    start_min: float = 0,
    pid: str = "P-0001",
) -> list[ReadingReceived]:
    """One metric of one participant, evenly spaced from T0 + start_min."""
    return [
        ReadingReceived(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}/{metric}/{start_min + i * every_min}"),
            participant_id=pid,
            device_id="wear-1",
            metric=metric,
            value=v,
            unit=UNITS[metric],
            measured_at=T0 + timedelta(minutes=start_min + i * every_min),
        )
        for i, v in enumerate(values)
    ]


def interleave(*streams: list[ReadingReceived]) -> list[ReadingReceived]:
    """Merge streams by measurement time (stable, so ties keep argument order)."""
    return sorted((r for s in streams for r in s), key=lambda r: r.measured_at)


def _minute(rng: random.Random, scenario: str, minute: int) -> dict[Metric, float]:
    cycle = minute % 180
    hr, steps = rng.gauss(68, 3), float(rng.choice([0, 0, 0, 5, 12, 30]))
    spo2, temp, rr = rng.gauss(97, 0.8), rng.gauss(36.7, 0.2), rng.gauss(15, 1.2)
    if scenario == "exercise" and 20 <= cycle < 45:
        hr, steps, rr = rng.gauss(135, 8), float(rng.randint(100, 135)), rng.gauss(22, 1.5)
    elif scenario == "tachycardia" and 30 <= cycle < 55:
        hr, steps = rng.uniform(112, 145), 0.0
    elif scenario == "desaturation" and 30 <= cycle < 70:
        spo2 = rng.uniform(88, 94)
    elif scenario == "fever" and 30 <= cycle < 90:
        temp = rng.uniform(38.0, 39.6)
    elif scenario == "artefacts" and cycle % 17 == 0:
        hr = 185.0
    out = {Metric.HEART_RATE: round(hr, 1), Metric.STEP_COUNT: steps}
    if minute % 5 == 0:
        out[Metric.OXYGEN_SATURATION] = round(min(spo2, 100.0), 1)
        out[Metric.BODY_TEMPERATURE] = round(temp, 2)
        out[Metric.RESPIRATORY_RATE] = round(max(rr, 4.0), 1)
    return out


SCENARIOS = ("normal", "exercise", "tachycardia", "desaturation", "fever", "artefacts")


def fleet_records(participants: int, minutes: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Device-contract records of a simulated fleet, interleaved in time like live traffic."""
    rng = random.Random(seed)
    for minute in range(minutes):
        at = (T0 + timedelta(minutes=minute)).isoformat()
        for i in range(participants):
            pid = f"P-{i + 1:05d}"
            for metric, value in _minute(rng, SCENARIOS[i % len(SCENARIOS)], minute).items():
                yield {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "participant_id": pid,
                    "device_id": f"wear-{pid}",
                    "metric": str(metric),
                    "value": value,
                    "unit": UNITS[metric],
                    "measured_at": at,
                }


def write_fleet(path: Path, participants: int, minutes: int, seed: int = 7) -> int:
    """Write a fleet's readings as JSONL; returns how many lines were written."""
    count = 0
    with path.open("w", encoding="utf-8") as sink:
        for record in fleet_records(participants, minutes, seed):
            sink.write(json.dumps(record) + "\n")
            count += 1
    return count


# Values around every limit, so random streams cross them often.
_CHOICES: dict[Metric, tuple[float, ...]] = {
    Metric.HEART_RATE: (70, 72, 112, 125, 131, 150, 40, 38),
    Metric.OXYGEN_SATURATION: (97, 96, 93, 92, 91, 88),
    Metric.BODY_TEMPERATURE: (36.8, 38.1, 38.6, 39.1, 39.5, 35.0, 34.5),
    Metric.RESPIRATORY_RATE: (15, 16, 21, 24, 25, 30, 8, 6),
    Metric.STEP_COUNT: (0, 0, 0, 10, 60, 120, 400),
}


def random_stream(seed: int, participants: int = 3, length: int = 600) -> list[ReadingReceived]:
    """Messy traffic: runs of breaching values, walking bursts, silences, duplicates, late
    and out-of-order readings, a device lagging the phone's steps, non-UTC offsets,
    sub-second times, the odd NaN."""
    rng = random.Random(seed)
    lag = {("P-01", Metric.HEART_RATE): 30.0, ("P-02", Metric.RESPIRATORY_RATE): 25.0}
    clock = {f"P-{i:02d}": T0 for i in range(participants)}
    sticky: dict[tuple[str, Metric], float] = {}
    out: list[ReadingReceived] = []
    offsets = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))
    for _ in range(length):
        pid = rng.choice(list(clock))
        metric = rng.choice([*_CHOICES, Metric.HEART_RATE, Metric.STEP_COUNT])
        if out and rng.random() < 0.03:
            out.append(rng.choice(out))  # re-delivery
            continue
        step = rng.choice((0.3, 0.7, 1, 1, 1, 2, 3, 5))
        if rng.random() < 0.02:
            step = rng.uniform(16, 60)  # a silence longer than max_gap
        clock[pid] += timedelta(minutes=step, microseconds=rng.randrange(1_000_000))
        at = clock[pid] - timedelta(minutes=lag.get((pid, metric), 0.0))
        if rng.random() < 0.03:
            at -= timedelta(minutes=rng.uniform(1, 20))
        if (pid, metric) not in sticky or rng.random() < 0.25:  # values persist, so runs form
            sticky[pid, metric] = rng.choice(_CHOICES[metric])
        value = float("nan") if rng.random() < 0.005 else sticky[pid, metric]
        out.append(
            ReadingReceived(
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                participant_id=pid,
                device_id="wear-1",
                metric=metric,
                value=value,
                unit=UNITS[metric],
                measured_at=at.astimezone(rng.choice(offsets)),
            )
        )
    return out


def fleet_day(participants: int, day: int, seed: int = 7) -> Columns:
    """One simulated day of a fleet as columns (fast enough to replay months): heart rate
    (whole beats/min, with a daily rhythm and a tachycardia hour every third day) and steps
    every minute, SpO2, temperature and breathing every 5 minutes."""
    rng = np.random.default_rng([seed, day])
    minute = np.arange(day * 1440, (day + 1) * 1440)
    five = minute % 5 == 0
    parts: list[tuple[int, Metric, npt.NDArray[np.float64], npt.NDArray[np.int64]]] = []
    for p in range(participants):
        hr = 64 + 6 * np.sin(2 * np.pi * (minute % 1440) / 1440) + rng.normal(0, 3, len(minute))
        if day % 3 == 2:
            hr[600 + 60 * p : 660 + 60 * p] = 130
        steps = rng.choice([0.0, 0.0, 0.0, 5.0, 12.0, 30.0, 400.0], len(minute))
        spo2 = np.minimum(rng.normal(97, 0.8, five.sum()), 100)
        parts += [
            (p, Metric.HEART_RATE, np.rint(hr), minute),
            (p, Metric.STEP_COUNT, steps, minute),
            (p, Metric.OXYGEN_SATURATION, np.round(spo2, 1), minute[five]),
            (
                p,
                Metric.BODY_TEMPERATURE,
                np.round(rng.normal(36.7, 0.2, five.sum()), 2),
                minute[five],
            ),
            (p, Metric.RESPIRATORY_RATE, np.rint(rng.normal(15, 1.2, five.sum())), minute[five]),
        ]
    pi = np.concatenate([np.full(len(t), p) for p, _, _, t in parts])
    m = np.concatenate([np.full(len(t), METRIC_CODE[metric]) for _, metric, _, t in parts])
    v = np.concatenate([values for _, _, values, _ in parts])
    t_us = np.concatenate([t for _, _, _, t in parts]) * 60_000_000 + int(T0.timestamp()) * 10**6
    order = np.lexsort((pi, t_us))  # as live traffic: in time, participants interleaved
    ids = rng.bytes(16 * len(order))
    names = [f"P-{p + 1:05d}" for p in range(participants)]
    return Columns(names, pi[order], m[order], v[order], t_us[order], ids)

"""The realistic device mix's labels (benchmarks/anomaly/mix.py): an event starts when the
signal first meets its definition, and the held-out fleets are not the tuning ones."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from trialstream.events.readings import Metric

from benchmarks.anomaly import realistic
from benchmarks.anomaly.generate import METRICS, GeneratorConfig
from benchmarks.anomaly.labels import EventKind
from benchmarks.anomaly.mix import Mix, _Grid, generate_mix, onset_s


def grid(minutes: int, **signal: float) -> _Grid:
    flat = {"hr": 70.0, "spo2": 97.0, "temp": 36.8, "rr": 14.0}
    arrays = {k: np.full(minutes, signal.get(k, v)) for k, v in flat.items()}
    zeros = np.zeros(minutes)
    return _Grid(**arrays, steps=zeros, moving=zeros > 0, asleep=zeros > 0, af_sd=zeros.copy())


def reading_at(values: np.ndarray, second: int) -> float:
    return float(np.interp(second / 60.0, np.arange(len(values)), values))


def test_a_fever_starts_at_the_first_second_a_reading_would_say_38() -> None:
    g = grid(10)
    g.temp[4], g.temp[5:] = 37.8, 38.1  # the ramp's last minute, then the fever's first
    start = onset_s(g, EventKind.FEVER, 5)
    assert 4 * 60 < start < 5 * 60  # inside the minute before the whole-minute start
    assert np.round(reading_at(g.temp, start), 2) >= 38.0
    assert np.round(reading_at(g.temp, start - 1), 2) < 38.0


@pytest.mark.parametrize(
    ("kind", "field", "before", "inside", "meets"),
    [
        (EventKind.TACHYCARDIA_AT_REST, "hr", 70.0, 130.0, lambda v: np.rint(v) >= 120),
        (EventKind.BRADYCARDIA, "hr", 60.0, 36.0, lambda v: np.rint(v) <= 40),
        (EventKind.DESATURATION, "spo2", 97.0, 88.0, lambda v: np.rint(v) <= 91),
        (EventKind.TACHYPNEA, "rr", 15.0, 27.0, lambda v: np.round(v, 1) >= 25),
    ],
)
def test_each_limit_kind_starts_where_the_interpolated_signal_crosses(
    kind: EventKind, field: str, before: float, inside: float, meets: object
) -> None:
    g = grid(10, **{field: before})
    getattr(g, field)[5:] = inside
    start = onset_s(g, kind, 5)
    values = getattr(g, field)
    assert callable(meets)
    assert meets(reading_at(values, start))
    assert not meets(reading_at(values, start - 1))


def test_kinds_without_a_limit_start_on_their_whole_minute() -> None:
    g = grid(10)
    assert onset_s(g, EventKind.IRREGULAR_RHYTHM, 5) == 300
    assert onset_s(g, EventKind.BASELINE_SHIFT, 5) == 300
    assert onset_s(g, EventKind.DROPOUT, 5) == 300


@pytest.fixture(scope="module")
def mixes() -> dict[int, Mix]:
    seeds = (realistic.TUNING_SEEDS[0], realistic.HELD_OUT_SEEDS[0])
    return {s: generate_mix(GeneratorConfig(participants=12, days=3, seed=s)) for s in seeds}


def test_no_fever_reading_comes_before_its_labelled_start(mixes: dict[int, Mix]) -> None:
    temp = METRICS.index(Metric.BODY_TEMPERATURE)
    fevers = 0
    for mix in mixes.values():
        data = mix.dataset
        start_us = int(data.config.start.timestamp()) * 1_000_000
        ids = [p.participant_id for p in data.participants]
        for label in data.labels.labels:
            if label.kind is not EventKind.FEVER:
                continue
            fevers += 1
            first = (label.start - data.config.start) // timedelta(microseconds=1) + start_us
            rows = (data.p == ids.index(label.participant_id)) & (data.m == temp)
            hour_before = rows & (data.t_us < first) & (data.t_us >= first - 3_600_000_000)
            assert (data.v[hour_before] < 38.0).all()
    assert fevers > 0


def test_held_out_fleets_are_not_the_tuning_fleets(mixes: dict[int, Mix]) -> None:
    assert not set(realistic.TUNING_SEEDS) & set(realistic.HELD_OUT_SEEDS)
    tuning, held_out = (mixes[s].dataset for s in sorted(mixes))
    assert tuning.labels.labels != held_out.labels.labels
    n = min(len(tuning.v), len(held_out.v))
    assert not np.array_equal(tuning.v[:n], held_out.v[:n])

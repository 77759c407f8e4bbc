"""Readings summarised per participant for the services that need to know that data came,
or its shape over minutes, not each value (decisions 0092 and 0093): one
`ReadingsSummarised` per participant per upload."""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID, uuid5

import numpy as np

from trialstream.events.readings import (
    DeviceSeries,
    Metric,
    ReadingsSummarised,
    Rollups,
    SteepChange,
)

# uuid5 namespace of summary ids: a summary's id is a function of its readings' ids
_NAMESPACE = UUID("5b0c3e52-6d8e-4f4f-9a43-2f1d6c7a9e10")
_HOUR = 3600
ROLLUP_SECONDS = 300  # the rollups' bucket: 5 minutes, aligned to UTC


@dataclass(frozen=True)
class SteepFloor:
    """A change between consecutive readings is steep when it is larger than `delta` and
    came at most `within_seconds` after the reading before. A consumer's own rule (e.g.
    monitoring's implausible jumps) may be stricter than the floor, never looser."""

    delta: float
    within_seconds: float


STEEP_CHANGES: dict[Metric, SteepFloor] = {
    Metric.HEART_RATE: SteepFloor(25.0, 120.0),
    Metric.BODY_TEMPERATURE: SteepFloor(1.0, 900.0),
}


class Summarisable(Protocol):
    """What a summary needs of a reading (an upload's record or a `ReadingReceived`)."""

    @property
    def event_id(self) -> UUID: ...
    @property
    def participant_id(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def metric(self) -> Metric: ...
    @property
    def value(self) -> float: ...
    @property
    def measured_at(self) -> datetime: ...


_DENSE = 64  # a series this long is folded with numpy, a shorter one in plain Python


@dataclass
class _Series:
    """One device's readings of one metric, folded: (bucket, n, sum, min, max) runs, the
    ends and the steep changes."""

    runs: list[tuple[int, float, float, float, float]]
    first: tuple[float, float]
    last: tuple[float, float]
    steep: list[tuple[float, float, float]]  # (at, delta, seconds)


def summarise(
    readings: Iterable[Summarisable], study_id: str, received_at: datetime
) -> list[ReadingsSummarised]:
    """One summary per participant of `readings` (all of `study_id`), in first-seen order."""
    columns: dict[tuple[str, str, Metric], tuple[list[float], list[float]]] = {}
    ids: dict[str, list[int]] = defaultdict(list)
    for r in readings:
        key = (r.participant_id, r.device_id, r.metric)
        times_values = columns.get(key)
        if times_values is None:
            times_values = columns[key] = ([], [])
        times_values[0].append(r.measured_at.timestamp())
        times_values[1].append(r.value)
        ids[r.participant_id].append(r.event_id.int)
    series: dict[str, dict[tuple[str, Metric], _Series]] = defaultdict(dict)
    for participant, device, metric in sorted(columns, key=lambda k: k[1:]):
        times, values = columns[participant, device, metric]
        fold = _fold_dense if len(times) >= _DENSE else _fold
        series[participant][device, metric] = fold(times, values, STEEP_CHANGES.get(metric))
    return [
        _summary(participant, series[participant], ids[participant], study_id, received_at)
        for participant in ids
    ]


def _summary(
    participant: str,
    series: dict[tuple[str, Metric], _Series],
    ids: list[int],
    study_id: str,
    received_at: datetime,
) -> ReadingsSummarised:
    buckets: dict[tuple[Metric, int], list[float]] = {}  # -> [n, sum, min, max]
    for (_, metric), folded in series.items():
        for bucket, n, total, lo, hi in folded.runs:
            b = buckets.get((metric, bucket))
            if b is None:
                buckets[metric, bucket] = [n, total, lo, hi]
            else:  # another device's readings of the same metric and bucket
                b[0] += n
                b[1] += total
                b[2] = min(b[2], lo)
                b[3] = max(b[3], hi)
    hours = sorted({bucket * ROLLUP_SECONDS // _HOUR for _, bucket in buckets})
    # sorted 16-byte big-endian ids are the sorted ints: the same digest as over the bytes
    digest = hashlib.sha256(b"".join(i.to_bytes(16, "big") for i in sorted(ids))).hexdigest()
    return ReadingsSummarised(
        event_id=uuid5(_NAMESPACE, digest),
        occurred_at=received_at,
        participant_id=participant,
        study_id=study_id,
        readings=len(ids),
        first_measured_at=_ts(min(f.first[0] for f in series.values())),
        last_measured_at=_ts(max(f.last[0] for f in series.values())),
        hours=[_ts(h * _HOUR) for h in hours],
        devices=sorted({device for device, _ in series}),
        rollups=_rollups(buckets),
        series=[
            DeviceSeries(
                device_id=device,
                metric=metric,
                first_at=_ts(f.first[0]),
                first_value=f.first[1],
                last_at=_ts(f.last[0]),
                last_value=f.last[1],
                steep=[SteepChange(at=_ts(at), delta=d, seconds=dt) for at, d, dt in f.steep],
            )
            for (device, metric), f in series.items()
        ],
    )


def _rollups(buckets: dict[tuple[Metric, int], list[float]]) -> Rollups:
    keys = sorted(buckets)
    n, total, lo, hi = zip(*(buckets[k] for k in keys), strict=True) if keys else ((),) * 4
    return Rollups(
        metric=[m for m, _ in keys],
        bucket=[_ts(b * ROLLUP_SECONDS) for _, b in keys],
        n=[int(x) for x in n],
        sum=list(total),
        min=list(lo),
        max=list(hi),
    )


def _fold(times: list[float], values: list[float], floor: SteepFloor | None) -> _Series:
    """A short series in plain Python: sorted by time, a bucket's points are one run."""
    points = sorted(zip(times, values, strict=True))
    runs = []
    current, n, total, lo, hi = -1, 0.0, 0.0, 0.0, 0.0
    for at, value in points:
        bucket = int(at // ROLLUP_SECONDS)
        if bucket != current:
            if n:
                runs.append((current, n, total, lo, hi))
            current, n, total, lo, hi = bucket, 1.0, value, value, value
            continue
        n += 1
        total += value
        if value < lo:
            lo = value
        elif value > hi:
            hi = value
    runs.append((current, n, total, lo, hi))
    steep = (
        [
            (t1, v1 - v0, t1 - t0)
            for (t0, v0), (t1, v1) in itertools.pairwise(points)
            if 0 < t1 - t0 <= floor.within_seconds and abs(v1 - v0) > floor.delta
        ]
        if floor
        else []
    )
    return _Series(runs, points[0], points[-1], steep)


def _fold_dense(times: list[float], values: list[float], floor: SteepFloor | None) -> _Series:
    """The same fold as `_fold`, with numpy: for the long series of dense devices."""
    t, v = np.asarray(times), np.asarray(values)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    bucket = (t // ROLLUP_SECONDS).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    n = np.diff(np.r_[starts, len(t)])
    runs = list(
        zip(
            bucket[starts].tolist(),
            n.astype(float).tolist(),
            np.add.reduceat(v, starts).tolist(),
            np.minimum.reduceat(v, starts).tolist(),
            np.maximum.reduceat(v, starts).tolist(),
            strict=True,
        )
    )
    steep: list[tuple[float, float, float]] = []
    if floor:
        dt, dv = np.diff(t), np.diff(v)
        hit = np.flatnonzero((dt > 0) & (dt <= floor.within_seconds) & (np.abs(dv) > floor.delta))
        steep = list(zip(t[hit + 1].tolist(), dv[hit].tolist(), dt[hit].tolist(), strict=True))
    return _Series(runs, (float(t[0]), float(v[0])), (float(t[-1]), float(v[-1])), steep)


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

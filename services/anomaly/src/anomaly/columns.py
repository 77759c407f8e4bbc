"""A batch of readings as arrays: what the scorer works on, and what replay's parsing
workers send back to the scoring process (arrays pickle in one piece; a list of
pydantic models would cost more to pickle than to parse again)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import overload

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

from anomaly.config import METRIC_CODE, METRICS
from anomaly.explain import EPOCH
from anomaly.reading import Reading

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Columns:
    """Readings in arrival order: participant index, metric code, value, measured_at in
    epoch microseconds, and the event ids as 16 bytes each."""

    participants: list[str]  # index -> participant id, in order of first appearance
    p: IntArray
    m: IntArray
    v: FloatArray
    t: IntArray
    event_ids: bytes

    def __len__(self) -> int:
        return len(self.p)

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> Columns:
        n = len(readings)
        index: dict[str, int] = {}
        p = np.fromiter(
            (index.setdefault(r.participant_id, len(index)) for r in readings), np.int64, n
        )
        m = np.fromiter((METRIC_CODE[r.metric] for r in readings), np.int64, n)
        v = np.fromiter((r.value for r in readings), np.float64, n)
        # timestamp() is within 0.12 us of the truth, so rounding recovers exact microseconds.
        seconds = np.fromiter((r.measured_at.timestamp() for r in readings), np.float64, n)
        t = np.rint(seconds * 1e6).astype(np.int64)
        ids = b"".join(r.event_id.bytes for r in readings)
        return cls(list(index), p, m, v, t, ids)


@dataclass(frozen=True)
class _Row:
    event_id: uuid.UUID
    participant_id: str
    metric: Metric
    value: float
    measured_at: datetime


class ColumnReadings(Sequence[Reading]):
    """Columns seen as readings, built on demand (the scorer asks for a few: the first
    reading of a run, the one that closed an episode)."""

    def __init__(self, columns: Columns) -> None:
        self._c = columns

    def __len__(self) -> int:
        return len(self._c)

    @overload
    def __getitem__(self, i: int) -> Reading: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Reading]: ...

    def __getitem__(self, i: int | slice) -> Reading | Sequence[Reading]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        c, i = self._c, int(i)
        return _Row(
            uuid.UUID(bytes=c.event_ids[16 * i : 16 * i + 16]),
            c.participants[int(c.p[i])],
            METRICS[int(c.m[i])],
            float(c.v[i]),
            EPOCH + timedelta(microseconds=int(c.t[i])),
        )

"""Readings to JSONL in the device contract, fast: ~2M lines in a few seconds.

Everything that can be is computed as arrays (UUID hex, local timestamps, value strings);
the one Python loop left is the f-string per line. Event ids come from a generator seeded
from the dataset's seed, so a seed always yields byte-identical files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import UNITS, Metric

from benchmarks.anomaly.generate import METRICS, Dataset

CHUNK = 200_000
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
DASHES = (8, 13, 18, 23)
DECIMALS = {Metric.BODY_TEMPERATURE: 2, Metric.RESPIRATORY_RATE: 1}  # others are whole


def uuid4_strings(rng: np.random.Generator, n: int) -> list[str]:
    """n random version-4 UUIDs in canonical form, built as bytes in one go."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = HEX[raw >> 4], HEX[raw & 0x0F]
    text = np.insert(digits, [8, 12, 16, 20], ord("-"), axis=1)
    return [s.decode() for s in np.ascontiguousarray(text).view("S36").ravel().tolist()]


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _values(m: npt.NDArray[np.int64], v: npt.NDArray[np.float64]) -> list[str]:
    out = np.empty(len(v), dtype=object)
    for code, metric in enumerate(METRICS):
        rows = m == code
        places = DECIMALS.get(metric, 0)
        out[rows] = [f"{x:.{places}f}" for x in v[rows].tolist()]
    return list(out)


def _timestamps(t_us: npt.NDArray[np.int64], offset_min: npt.NDArray[np.int64]) -> list[str]:
    local = (t_us // 1_000_000 + offset_min * 60).astype("datetime64[s]")
    stamps = np.datetime_as_string(local, unit="s").tolist()
    kinds, which = np.unique(offset_min, return_inverse=True)
    suffix = [_offset_text(int(k)) for k in kinds]
    return [s + suffix[i] for s, i in zip(stamps, which.tolist(), strict=True)]


def iter_lines(dataset: Dataset, *, extra: str = "", end: str = "\n") -> Iterator[list[str]]:
    """Readings as JSON lines in arrival order, CHUNK at a time. `extra` is spliced in
    before the closing brace (further fields, e.g. to make a ReadingReceived event)."""
    rng = np.random.default_rng([dataset.config.seed, 1])
    ids = [(x.participant_id, x.device_id) for x in dataset.participants]
    heads = [f'","metric":"{m}","value":' for m in METRICS]
    units = [f',"unit":"{UNITS[m]}","measured_at":"' for m in METRICS]
    for a in range(0, len(dataset.t_us), CHUNK):
        b = min(a + CHUNK, len(dataset.t_us))
        m = dataset.m[a:b]
        rows = zip(
            uuid4_strings(rng, b - a),
            dataset.p[a:b].tolist(),
            m.tolist(),
            _values(m, dataset.v[a:b]),
            _timestamps(dataset.t_us[a:b], dataset.offset_min[a:b]),
            strict=True,
        )
        yield [
            f'{{"event_id":"{u}","participant_id":"{ids[p][0]}","device_id":"{ids[p][1]}'
            f'{heads[k]}{val}{units[k]}{ts}"{extra}}}{end}'
            for u, p, k, val, ts in rows
        ]


def write_readings(dataset: Dataset, path: Path) -> int:
    """Write every reading, in arrival order; returns the number of lines."""
    with path.open("w", encoding="utf-8") as sink:
        for lines in iter_lines(dataset):
            sink.write("".join(lines))
    return len(dataset.t_us)

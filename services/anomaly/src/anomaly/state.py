"""Per-participant scoring state and its JSON form (what the service checkpoints).

The JSON is versioned by `format`; times are integer microseconds since the Unix epoch (UTC),
so a round trip is exact. Empty parts are left out, which keeps the checkpoint of a
participant with nothing going on to a few dozen bytes plus the recent step history.

Bounded: every part holds only what a rule can still look back over (the longest is the
resting heart-rate baseline's week of hourly medians), and that week is written as a fixed
run of hourly slots (null where an hour had no resting reading), so a checkpoint is the same
size after a few days as after months (decision 0075). Format 1 (hourly medians as
[hour, median] pairs) still loads; it is written as format 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

FORMAT = 2
READABLE_FORMATS = (1, 2)
# Hourly medians a resting baseline can still use: a reading at hour H uses hours H - 169
# to H - 22 (anomaly.baseline), and no reading comes before the hour in progress.
RESTING_SLOTS = 7 * 24 + 1
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class StateError(ValueError):
    """A checkpointed state cannot be read (unknown format or malformed)."""


@dataclass
class Run:
    """Consecutive readings at or beyond one band of one limit."""

    n: int
    start_us: int
    first: str  # event_id of the run's first reading: part of the alert id
    values: list[float]  # kept only while the run may still alert (band above the episode's)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "start_us": self.start_us, "first": self.first}
        if self.values:
            out["values"] = self.values
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        values = [float(x) for x in data.get("values", ())]
        return cls(int(data["n"]), int(data["start_us"]), str(data["first"]), values)


@dataclass
class RuleState:
    alerted: int = 0  # highest band alerted in the current episode; 0 = no episode
    recovery: int = 0  # in-range readings in a row while an episode is open
    runs: dict[int, Run] = field(default_factory=dict)  # band -> run in progress

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.alerted:
            out["alerted"], out["recovery"] = self.alerted, self.recovery
        if self.runs:
            out["runs"] = {str(band): run.to_json() for band, run in self.runs.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleState:
        runs = {int(band): Run.from_json(run) for band, run in data.get("runs", {}).items()}
        return cls(int(data.get("alerted", 0)), int(data.get("recovery", 0)), runs)


@dataclass
class SeriesState:
    """One metric of one participant: the newest reading scored, and each limit's state."""

    last_us: int
    rules: dict[str, RuleState] = field(default_factory=dict)
    last_v: float | None = None  # value of the newest reading (flatline detection)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"last_us": self.last_us}
        if self.last_v is not None:
            out["last_v"] = self.last_v
        if self.rules:
            out["rules"] = {rule: state.to_json() for rule, state in self.rules.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeriesState:
        rules = {rule: RuleState.from_json(s) for rule, s in data.get("rules", {}).items()}
        last_v = data.get("last_v")
        return cls(int(data["last_us"]), rules, None if last_v is None else float(last_v))


@dataclass
class RestingBaseline:
    """What the personal resting heart-rate baseline is learned from: the median resting
    heart rate of each completed UTC hour (kept for a week), the resting readings of the
    hour in progress, and the resting readings of the trailing window."""

    hours: dict[int, float] = field(default_factory=dict)  # UTC hour index -> median
    pending_hour: int = -1
    pending: list[float] = field(default_factory=list)
    # The trailing window's readings, as arrays: every batch joins them to its new rows.
    recent_us: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    recent: FloatArray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    # Not checkpointed: the baseline at an hour uses only hours >= 22 h older, which are
    # final, so once computed it never changes.
    known: dict[int, tuple[float, float]] = field(default_factory=dict, compare=False)

    def __eq__(self, other: object) -> bool:  # arrays compare by value, not elementwise
        if not isinstance(other, RestingBaseline):
            return NotImplemented
        return self.to_json() == other.to_json()

    def is_empty(self) -> bool:
        return not (self.hours or self.pending or len(self.recent))

    def to_json(self) -> dict[str, Any]:
        # A fixed run of slots ending before the hour in progress (earlier only while a
        # batch spanning hours still holds older ones), so its size does not grow with time.
        last = self.pending_hour if self.pending_hour >= 0 else max(self.hours, default=-1) + 1
        first = min(last - RESTING_SLOTS, *self.hours) if self.hours else last
        return {
            "hours_from": first,
            "hours": [self.hours.get(h) for h in range(first, last)],
            "pending_hour": self.pending_hour,
            "pending": self.pending,
            "recent_us": self.recent_us.tolist(),
            "recent": self.recent.tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RestingBaseline:
        if "hours_from" in data:  # format 2: slots from hours_from, null = no median
            first = int(data["hours_from"])
            hours = {first + i: float(m) for i, m in enumerate(data["hours"]) if m is not None}
        else:  # format 1: [hour, median] pairs
            hours = {int(h): float(m) for h, m in data["hours"]}
        return cls(
            hours,
            int(data["pending_hour"]),
            [float(x) for x in data["pending"]],
            np.array([int(x) for x in data["recent_us"]], dtype=np.int64),
            np.array([float(x) for x in data["recent"]], dtype=np.float64),
        )


NEVER = int(np.iinfo(np.int64).min)
VITALS = 4  # heart rate, SpO2, temperature, respiratory rate: see anomaly.windows


def _sums(data: Any) -> list[float]:
    values = [float(x) for x in data]
    if len(values) != VITALS:
        raise ValueError(f"expected {VITALS} values, got {len(values)}")
    return values


@dataclass
class WindowState:
    """What the multivariate model's windows are built from (anomaly.windows): resting sums
    (in thousandths of the unit: whole numbers, so exact) and counts per vital of the
    window and of the hour in progress, the resting mean of
    each completed hour (None where a vital had no resting reading), and the model rule's
    own episode state in `series` (its last_us: the newest window scored)."""

    window: int = -1  # index of the window in progress (-1: none yet)
    sums: list[float] = field(default_factory=lambda: [0.0] * VITALS)
    counts: list[float] = field(default_factory=lambda: [0.0] * VITALS)
    hour: int = -1
    hour_sums: list[float] = field(default_factory=lambda: [0.0] * VITALS)
    hour_counts: list[float] = field(default_factory=lambda: [0.0] * VITALS)
    # Completed hours, oldest first: [hour, then per vital the resting mean in hundredths
    # of the unit (None: no resting reading)]. Kept in the checkpoint's own form, because
    # converting it element by element costs more than the rest of a live batch's state.
    hours: list[list[int | None]] = field(default_factory=list)
    series: SeriesState = field(default_factory=lambda: SeriesState(NEVER))
    # Not checkpointed, like RestingBaseline.known: baselines of final hours never change.
    known: dict[int, tuple[FloatArray, FloatArray]] = field(default_factory=dict, compare=False)

    def is_empty(self) -> bool:
        return self.window < 0 and not self.hours and not self.series.rules

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"window": self.window}
        if any(self.counts):
            out["sums"], out["counts"] = self.sums, self.counts
        if self.hour >= 0:
            out["hour"] = self.hour
            out["hour_sums"], out["hour_counts"] = self.hour_sums, self.hour_counts
        if self.hours:
            out["hours"] = list(self.hours)  # rows are replaced, never changed in place
        if self.series.rules or self.series.last_us != NEVER:
            out["series"] = self.series.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowState:
        hours = [list(row) for row in data.get("hours", ())]
        if any(len(row) != VITALS + 1 or row[0] is None for row in hours):
            raise ValueError("an hour needs its index and one mean per vital")
        series = data.get("series")
        zeros = [0.0] * VITALS
        return cls(
            int(data["window"]),
            _sums(data.get("sums", zeros)),
            _sums(data.get("counts", zeros)),
            int(data.get("hour", -1)),
            _sums(data.get("hour_sums", zeros)),
            _sums(data.get("hour_counts", zeros)),
            hours,
            SeriesState(NEVER) if series is None else SeriesState.from_json(series),
        )


@dataclass
class ParticipantState:
    series: dict[Metric, SeriesState] = field(default_factory=dict)
    # Recent step-count readings (time, steps), oldest first, for activity context.
    step_us: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    steps: FloatArray = field(default_factory=lambda: np.empty(0, np.float64))
    resting: RestingBaseline = field(default_factory=RestingBaseline)
    # Newest measured_at of any metric, and the silence (by its start) already alerted.
    seen_us: int | None = None
    dropout_alerted_us: int | None = None
    jumps_us: list[int] = field(default_factory=list)  # recent implausible heart-rate jumps
    # Added after format 1 was in use: optional in the JSON, so older checkpoints load
    # (their participants start learning the model's baselines from the next reading).
    windows: WindowState = field(default_factory=WindowState)
    # The last heart-rate readings for the irregular-rhythm rule (optional in the JSON too).
    rhythm_us: list[int] = field(default_factory=list)
    rhythm_v: list[float] = field(default_factory=list)
    # Recent respiratory-rate readings (time, value), oldest first, for exertion inferred
    # without steps (anomaly.exertion; optional in the JSON).
    breath_us: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    breath: FloatArray = field(default_factory=lambda: np.empty(0, np.float64))
    # Brief SpO2 dips per UTC day (epoch day -> count; anomaly.dips), and the study the
    # participant's readings came from (the night summary's access check). Optional too.
    dips: dict[int, int] = field(default_factory=dict)
    study_id: str | None = None
    rhythm_irregular: bool = False  # the irregular-rhythm verdict at the last judged reading
    # When heart rate last fell by `fall_bpm` or more from one reading to the next
    # (anomaly.exertion.moved; optional in the JSON).
    fall_us: int | None = None
    fast_fall_us: int | None = None  # a fall that left it at or above the heart-rate limit

    def context(self, name: str) -> tuple[IntArray, FloatArray]:
        """A context stream's history: "step" counts or "breath" (respiratory rate)."""
        return (self.step_us, self.steps) if name == "step" else (self.breath_us, self.breath)

    def keep_context(self, name: str, t: IntArray, v: FloatArray) -> None:
        if name == "step":
            self.step_us, self.steps = t, v
        else:
            self.breath_us, self.breath = t, v

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "series": {str(metric): s.to_json() for metric, s in self.series.items()},
        }
        if len(self.step_us):
            out["steps"] = {"t_us": self.step_us.tolist(), "steps": self.steps.tolist()}
        if not self.resting.is_empty():
            out["resting"] = self.resting.to_json()
        if self.seen_us is not None:
            out["seen_us"] = self.seen_us
        if self.dropout_alerted_us is not None:
            out["dropout_alerted_us"] = self.dropout_alerted_us
        if self.jumps_us:
            out["jumps_us"] = self.jumps_us
        if not self.windows.is_empty():
            out["windows"] = self.windows.to_json()
        if self.rhythm_us:
            out["rhythm"] = {"t_us": self.rhythm_us, "v": self.rhythm_v}
        if len(self.breath_us):
            out["breathing"] = {"t_us": self.breath_us.tolist(), "v": self.breath.tolist()}
        if self.dips:
            out["dips"] = [[day, n] for day, n in sorted(self.dips.items())]
        if self.study_id is not None:
            out["study_id"] = self.study_id
        if self.rhythm_irregular:
            out["rhythm_irregular"] = True
        if self.fall_us is not None:
            out["fall_us"] = self.fall_us
        if self.fast_fall_us is not None:
            out["fast_fall_us"] = self.fast_fall_us
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParticipantState:
        if data.get("format") not in READABLE_FORMATS:
            raise StateError(f"unknown scoring state format {data.get('format')!r}")
        try:
            series = {Metric(m): SeriesState.from_json(s) for m, s in data["series"].items()}
            steps = data.get("steps", {"t_us": [], "steps": []})
            step_us = np.asarray(steps["t_us"], dtype=np.int64)
            counts = np.asarray(steps["steps"], dtype=np.float64)
            resting = RestingBaseline.from_json(data["resting"]) if "resting" in data else None
            seen, alerted = data.get("seen_us"), data.get("dropout_alerted_us")
            jumps = [int(x) for x in data.get("jumps_us", ())]
            windows = WindowState.from_json(data["windows"]) if "windows" in data else None
            beat = data.get("rhythm", {"t_us": [], "v": []})
            rhythm_us, rhythm_v = [int(x) for x in beat["t_us"]], [float(x) for x in beat["v"]]
            breathing = data.get("breathing", {"t_us": [], "v": []})
            breath_us = np.asarray(breathing["t_us"], dtype=np.int64)
            breath = np.asarray(breathing["v"], dtype=np.float64)
            dips = {int(day): int(n) for day, n in data.get("dips", ())}
            study = data.get("study_id")
            irregular = bool(data.get("rhythm_irregular", False))
            fall, fast = data.get("fall_us"), data.get("fast_fall_us")
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"malformed scoring state: {exc!r}") from exc
        if (
            step_us.shape != counts.shape
            or len(rhythm_us) != len(rhythm_v)
            or breath_us.shape != breath.shape
        ):
            raise StateError("malformed scoring state: times and values differ in length")
        return cls(
            series,
            step_us,
            counts,
            resting or RestingBaseline(),
            None if seen is None else int(seen),
            None if alerted is None else int(alerted),
            jumps,
            windows or WindowState(),
            rhythm_us,
            rhythm_v,
            breath_us,
            breath,
            dips,
            None if study is None else str(study),
            irregular,
            None if fall is None else int(fall),
            None if fast is None else int(fast),
        )

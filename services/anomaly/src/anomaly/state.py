"""Per-participant scoring state and its JSON form (what the service checkpoints).

The JSON is versioned by `format`; times are integer microseconds since the Unix epoch (UTC),
so a round trip is exact. Empty parts are left out, which keeps the checkpoint of a
participant with nothing going on to a few dozen bytes plus the recent step history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from trialstream.events.readings import Metric

FORMAT = 1
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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"last_us": self.last_us}
        if self.rules:
            out["rules"] = {rule: state.to_json() for rule, state in self.rules.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeriesState:
        rules = {rule: RuleState.from_json(s) for rule, s in data.get("rules", {}).items()}
        return cls(int(data["last_us"]), rules)


@dataclass
class ParticipantState:
    series: dict[Metric, SeriesState] = field(default_factory=dict)
    # Recent step-count readings (time, steps), oldest first, for activity context.
    step_us: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    steps: FloatArray = field(default_factory=lambda: np.empty(0, np.float64))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "series": {str(metric): s.to_json() for metric, s in self.series.items()},
        }
        if len(self.step_us):
            out["steps"] = {"t_us": self.step_us.tolist(), "steps": self.steps.tolist()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParticipantState:
        if data.get("format") != FORMAT:
            raise StateError(f"unknown scoring state format {data.get('format')!r}")
        try:
            series = {Metric(m): SeriesState.from_json(s) for m, s in data["series"].items()}
            steps = data.get("steps", {"t_us": [], "steps": []})
            step_us = np.asarray(steps["t_us"], dtype=np.int64)
            counts = np.asarray(steps["steps"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"malformed scoring state: {exc!r}") from exc
        if step_us.shape != counts.shape:
            raise StateError("malformed scoring state: step times and counts differ in length")
        return cls(series, step_us, counts)

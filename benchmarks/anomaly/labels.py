"""Labelled events of the synthetic benchmark: kinds, their alert family, JSON form.

A label says: this participant had this episode from `start` (inclusive) to `end`
(exclusive), in stream time. Clinical kinds name the metric an alert must be about, except
early deterioration (several vitals mildly off at once), which any clinical alert detects;
device kinds (flatline, dropout) are matched by alert kind alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trialstream.events.readings import Metric


class EventKind(StrEnum):
    TACHYCARDIA_AT_REST = "tachycardia_at_rest"
    BRADYCARDIA = "bradycardia"
    DESATURATION = "desaturation"
    FEVER = "fever"
    TACHYPNEA = "tachypnea"
    BASELINE_SHIFT = "baseline_shift"
    FLATLINE = "flatline"
    DROPOUT = "dropout"
    EARLY_DETERIORATION = "early_deterioration"
    # Only in the realistic device mix (mix.py): atrial-fibrillation-like irregular rhythm.
    IRREGULAR_RHYTHM = "irregular_rhythm"


class Family(StrEnum):
    CLINICAL = "clinical"
    DEVICE = "device"


# The metric a clinical alert must name to detect the event; None for device kinds and
# for early deterioration (no one metric: any clinical alert about the participant counts).
KIND_METRIC: Mapping[EventKind, Metric | None] = MappingProxyType(
    {
        EventKind.TACHYCARDIA_AT_REST: Metric.HEART_RATE,
        EventKind.BRADYCARDIA: Metric.HEART_RATE,
        EventKind.DESATURATION: Metric.OXYGEN_SATURATION,
        EventKind.FEVER: Metric.BODY_TEMPERATURE,
        EventKind.TACHYPNEA: Metric.RESPIRATORY_RATE,
        EventKind.BASELINE_SHIFT: Metric.HEART_RATE,
        EventKind.FLATLINE: None,
        EventKind.DROPOUT: None,
        EventKind.EARLY_DETERIORATION: None,
        EventKind.IRREGULAR_RHYTHM: Metric.HEART_RATE,
    }
)
# Kinds the original generator (generate.py) never draws: its streams stay byte-identical.
MIX_ONLY_KINDS = frozenset({EventKind.IRREGULAR_RHYTHM})
DEVICE_KINDS = frozenset({EventKind.FLATLINE, EventKind.DROPOUT})


def family_of(kind: EventKind) -> Family:
    return Family.DEVICE if kind in DEVICE_KINDS else Family.CLINICAL


@dataclass(frozen=True)
class Label:
    participant_id: str
    kind: EventKind
    start: datetime
    end: datetime

    @property
    def metric(self) -> Metric | None:
        return KIND_METRIC[self.kind]

    @property
    def family(self) -> Family:
        return family_of(self.kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "kind": str(self.kind),
            "metric": None if self.metric is None else str(self.metric),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Label:
        return cls(
            participant_id=str(data["participant_id"]),
            kind=EventKind(data["kind"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
        )


@dataclass(frozen=True)
class LabelSet:
    """Everything the evaluator needs besides the alerts."""

    seed: int
    participants: int
    days: int
    labels: tuple[Label, ...]

    @property
    def participant_days(self) -> float:
        return float(self.participants * self.days)

    def dump(self, path: Path) -> None:
        body = {
            "seed": self.seed,
            "participants": self.participants,
            "days": self.days,
            "events": [label.to_json() for label in self.labels],
        }
        path.write_text(json.dumps(body, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LabelSet:
        body = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            seed=int(body["seed"]),
            participants=int(body["participants"]),
            days=int(body["days"]),
            labels=tuple(Label.from_json(e) for e in body["events"]),
        )

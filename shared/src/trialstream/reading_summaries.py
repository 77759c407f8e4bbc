"""Readings summarised per participant for the services that need to know that data came,
not each value (decision 0092): one `ReadingsSummarised` per participant per upload."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID, uuid5

from trialstream.events.readings import ReadingsSummarised

# uuid5 namespace of summary ids: a summary's id is a function of its readings' ids
_NAMESPACE = UUID("5b0c3e52-6d8e-4f4f-9a43-2f1d6c7a9e10")
_HOUR = 3600


class Summarisable(Protocol):
    """What a summary needs of a reading (an upload's record or a `ReadingReceived`)."""

    @property
    def event_id(self) -> UUID: ...
    @property
    def participant_id(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def measured_at(self) -> datetime: ...


@dataclass
class _Fold:
    first: float
    last: float
    hours: set[int] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    ids: list[bytes] = field(default_factory=list)


def summarise(
    readings: Iterable[Summarisable], study_id: str, received_at: datetime
) -> list[ReadingsSummarised]:
    """One summary per participant of `readings` (all of `study_id`), in first-seen order."""
    folds: dict[str, _Fold] = {}
    for r in readings:
        at = r.measured_at.timestamp()
        fold = folds.get(r.participant_id)
        if fold is None:
            fold = folds[r.participant_id] = _Fold(at, at)
        elif at < fold.first:
            fold.first = at
        elif at > fold.last:
            fold.last = at
        fold.hours.add(int(at // _HOUR))
        fold.devices.add(r.device_id)
        fold.ids.append(r.event_id.bytes)
    return [
        ReadingsSummarised(
            event_id=uuid5(_NAMESPACE, hashlib.sha256(b"".join(sorted(f.ids))).hexdigest()),
            occurred_at=received_at,
            participant_id=participant,
            study_id=study_id,
            readings=len(f.ids),
            first_measured_at=datetime.fromtimestamp(f.first, UTC),
            last_measured_at=datetime.fromtimestamp(f.last, UTC),
            hours=[datetime.fromtimestamp(h * _HOUR, UTC) for h in sorted(f.hours)],
            devices=sorted(f.devices),
        )
        for participant, f in folds.items()
    ]

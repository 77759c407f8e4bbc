"""What the scorer reads from a reading. The live consumer passes ReadingReceived events;
replay passes the validated uploads themselves, which saves building a second model per
line (most of replay's time went there). Both carry these attributes."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from trialstream.events.readings import Metric


class Reading(Protocol):
    @property
    def event_id(self) -> UUID: ...

    @property
    def participant_id(self) -> str: ...

    @property
    def metric(self) -> Metric: ...

    @property
    def value(self) -> float: ...

    @property
    def measured_at(self) -> datetime: ...

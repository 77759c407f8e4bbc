"""The readings group (service_info.GROUPS): each consumed batch goes to score_batch."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.events.readings import ReadingReceived
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime

from anomaly.config import ScoringConfig
from anomaly.service import Backlog, score_batch
from anomaly.service_info import GROUPS
from anomaly.settings import AnomalySettings

GROUP = GROUPS["readings"].name


def subscribe_scoring(
    runtime: Runtime, settings: AnomalySettings, config: ScoringConfig, backlog: Backlog
) -> None:
    async def score(readings: Sequence[ReadingReceived]) -> None:
        backlog.note_batch(len(readings))
        await score_batch(runtime.pool, readings, config)

    runtime.subscribe(Topic.READINGS, ReadingReceived, GROUP, score, max_records=settings.max_batch)

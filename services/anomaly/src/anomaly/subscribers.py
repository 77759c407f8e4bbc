"""The readings group (service_info.GROUPS): each consumed batch goes to score_batch."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.erasure import follow_erasures
from trialstream.events.readings import ReadingReceived
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime

from anomaly import erasure
from anomaly.service import Backlog, score_batch
from anomaly.service_info import GROUPS, SERVICE
from anomaly.settings import AnomalySettings
from anomaly.studies import StudyScoring

GROUP = GROUPS["readings"].name


def subscribe_scoring(
    runtime: Runtime, settings: AnomalySettings, scoring: StudyScoring, backlog: Backlog
) -> None:
    async def score(readings: Sequence[ReadingReceived]) -> None:
        backlog.note_batch(len(readings))
        await score_batch(runtime.pool, readings, scoring)

    runtime.subscribe(
        Topic.READINGS,
        ReadingReceived,
        GROUP,
        score,
        max_records=settings.max_batch,
        latency_critical=True,  # alert latency
    )
    follow_erasures(runtime, SERVICE.name, GROUPS["erasures"].name, erasure.erase)  # 0086

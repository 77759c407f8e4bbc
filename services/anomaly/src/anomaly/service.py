"""Score a batch against checkpointed state; persist state and alerts together. And the
live half of dropout detection: participants silent on the wall clock."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised
from trialstream.events.readings import ReadingReceived

from anomaly import repository
from anomaly.config import ScoringConfig
from anomaly.domain import Scorer
from anomaly.explain import EPOCH
from anomaly.studies import StudyScoring


async def score_batch(
    pool: asyncpg.Pool,
    readings: Sequence[ReadingReceived],
    scoring: StudyScoring,
) -> int:
    """The database is the source of truth for state: each batch starts from the last
    committed checkpoint of its participants, so a rebalance (another replica scored
    them meanwhile) or a re-delivered batch never works from stale memory. Each study's
    readings are scored with the study's configuration (its alert limits)."""
    parts = scoring.by_config(readings)
    received: dict[str, datetime] = {}
    for _, part in parts:
        for r in part:
            if r.participant_id not in received or r.occurred_at > received[r.participant_id]:
                received[r.participant_id] = r.occurred_at
    if not received:
        return 0
    loaded = await repository.load_states(pool, list(received))
    states: dict[str, Mapping[str, Any]] = {}
    alerts: list[AlertRaised] = []
    ended: list[AlertEpisodeEnded] = []
    for config, part in parts:
        ids = list(dict.fromkeys(r.participant_id for r in part))
        scorer = Scorer(config, stream_clock=False)  # a batch mixes partitions: see Scorer
        scorer.restore({pid: loaded.states[pid] for pid in ids if pid in loaded.states})
        scored = scorer.score_all(part)
        study_of = {r.participant_id: r.study_id for r in part}
        scorer.place(ids, part[0].study_id)  # a part is one study's readings
        states.update(scorer.snapshot(ids))
        alerts += [
            a.model_copy(update={"study_id": study_of[a.participant_id]}) for a in scored.alerts
        ]
        ended += [
            e.model_copy(update={"study_id": study_of[e.participant_id]}) for e in scored.ended
        ]
    return await repository.commit_scores(
        pool, states, alerts, received, ended, versions=loaded.versions
    )


@dataclass
class Backlog:
    """Whether the readings consumer is catching up. While it is, the wall-clock silence
    check waits: participants whose readings are still queued would look silent."""

    max_batch: int
    quiet_seconds: float = 30.0
    _last_full: float | None = None

    def note_batch(self, size: int) -> None:
        if size >= self.max_batch:
            self._last_full = time.monotonic()

    def catching_up(self) -> bool:
        last = self._last_full
        return last is not None and time.monotonic() - last < self.quiet_seconds


async def check_silences(pool: asyncpg.Pool, config: ScoringConfig, now: datetime) -> int:
    """Dropout alerts for participants from whom nothing arrived for `dropout_minutes` of
    wall-clock time. The alert is the one the stream would raise (same id), so a
    participant found both ways is alerted once."""
    clock_us = (now - EPOCH) // timedelta(microseconds=1)

    def decide(
        states: dict[str, dict[str, Any]],
    ) -> tuple[Mapping[str, Mapping[str, Any]], Sequence[AlertRaised]]:
        scorer = Scorer(config, stream_clock=False)
        scorer.restore(states)
        alerts = scorer.silences_until(clock_us)
        return scorer.snapshot([a.participant_id for a in alerts]), alerts

    cutoff = now - timedelta(minutes=config.dropout_minutes)
    return await repository.check_silent(pool, cutoff, decide)

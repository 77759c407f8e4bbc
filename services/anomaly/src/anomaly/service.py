"""Score a batch against checkpointed state; persist state and alerts together."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from trialstream.events.readings import ReadingReceived

from anomaly import repository
from anomaly.domain import Scorer
from anomaly.rules import ScoringConfig


async def score_batch(
    pool: asyncpg.Pool, readings: Sequence[ReadingReceived], config: ScoringConfig
) -> int:
    """The database is the source of truth for state: each batch starts from the last
    committed checkpoint of its participants, so a rebalance (another replica scored
    them meanwhile) or a re-delivered batch never works from stale memory."""
    participant_ids = list(dict.fromkeys(r.participant_id for r in readings))
    scorer = Scorer(config)
    scorer.restore(await repository.load_states(pool, participant_ids))
    alerts = scorer.score(readings)
    return await repository.commit_scores(pool, scorer.snapshot(participant_ids), alerts)

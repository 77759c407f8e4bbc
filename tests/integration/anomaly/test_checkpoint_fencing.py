"""Checkpoints are fenced (issue 16): a replica paused past its session timeout, whose
partitions moved to another replica meanwhile, cannot overwrite the newer checkpoint when
it wakes up with a batch scored from the old one. Its write is refused as a lost race (a
transient failure, so its consumer retries), and the retry from the new state changes
nothing and raises nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from anomaly import repository, service
from anomaly.config import ScoringConfig
from anomaly.service_info import SERVICE
from anomaly.studies import StudyScoring
from helpers import unique_id
from test_anomaly_consumer import heart_rates
from trialstream.db import create_pool, migrate
from trialstream.studies import StudyRegistry
from trialstream.transient import is_transient

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, schema=SERVICE.schema, directories=[SERVICE.migrations])
    pool = await create_pool(database_url, schema=SERVICE.schema, as_service_role=True)
    yield pool
    await pool.close()


async def checkpoint(pool: asyncpg.Pool, participant: str) -> tuple[Any, int]:
    row = await pool.fetchrow(
        "SELECT state, version FROM participant_state WHERE participant_id = $1", participant
    )
    assert row is not None
    return json.loads(row["state"]), row["version"]


async def test_a_paused_replica_cannot_overwrite_the_new_owners_checkpoint(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = StudyScoring(ScoringConfig.default(), StudyRegistry())  # the default study's
    participant = unique_id("P")
    quiet = heart_rates(participant, [70.0 + i % 4 for i in range(40)])
    episode = heart_rates(participant, [142.0] * 12 + [72.0] * 8, first_minute=40)

    # Replica A scores the quiet batch, then stalls before its write (a GC pause, a frozen
    # VM): longer than its session timeout, so its partitions move to replica B.
    paused, wake = asyncio.Event(), asyncio.Event()
    commit = repository.commit_scores

    async def stalls_once(*args: Any, **kwargs: Any) -> int:
        if not paused.is_set():
            paused.set()
            await wake.wait()
        return await commit(*args, **kwargs)

    monkeypatch.setattr(repository, "commit_scores", stalls_once)
    replica_a = asyncio.create_task(service.score_batch(pool, quiet, config))
    await paused.wait()

    # Replica B owns the partition now: it re-reads from the committed offset (the quiet
    # batch again), then the episode, and raises the alert.
    await service.score_batch(pool, quiet, config)
    assert await service.score_batch(pool, episode, config) == 1
    owners_state, owners_version = await checkpoint(pool, participant)

    wake.set()
    with pytest.raises(repository.LostRace) as lost:
        await replica_a
    assert is_transient(lost.value)  # its consumer retries instead of dead-lettering
    assert await checkpoint(pool, participant) == (owners_state, owners_version)

    # A's consumer retries the batch from the new checkpoint: nothing changes, no alert.
    assert await service.score_batch(pool, quiet, config) == 0
    state, _ = await checkpoint(pool, participant)
    assert state == owners_state
    assert (
        await pool.fetchval("SELECT count(*) FROM alerts WHERE participant_id = $1", participant)
        == 1
    )


async def test_two_first_writers_of_a_new_participant_do_not_both_win(pool: asyncpg.Pool) -> None:
    participant = unique_id("P")
    await repository.commit_scores(pool, {participant: {"format": 1}}, [], versions={})
    with pytest.raises(repository.LostRace):
        await repository.commit_scores(pool, {participant: {"format": 2}}, [], versions={})
    # The second loaded nothing, so it may not overwrite: the first checkpoint stands.
    state, version = await checkpoint(pool, participant)
    assert (state, version) == ({"format": 1}, 1)

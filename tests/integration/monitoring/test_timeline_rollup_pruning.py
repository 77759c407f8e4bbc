"""Timeline rollups stay bounded: the KRI tick deletes those older than
MONITORING_TIMELINE_ROLLUP_DAYS and keeps the recent ones the timeline shows (0075)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from helpers import as_uploads, unique_id
from monitoring.rbm import kri_evaluation
from monitoring.rbm.kri import KriConfig
from monitoring.timeline_readings import forget_rollups_before, record_rollups_for_timeline
from rbm_support import Rbm, now, rbm_service, reading

pytestmark = pytest.mark.integration


@pytest.fixture
async def rbm(kafka: str, database_url: str) -> AsyncIterator[Rbm]:
    async with rbm_service(kafka, database_url, timeline_rollup_days=30) as service:
        yield service


async def tick(rbm: Rbm, cfg: KriConfig) -> None:
    """One KRI tick of our own (the service's loop may hold the lock a moment)."""
    for _ in range(100):
        rules = rbm.settings.flag_rules()
        if await kri_evaluation.evaluate(rbm.pools[0], cfg, rules, rbm.studies) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the KRI tick stayed held by another pass")


async def buckets(rbm: Rbm, participant: str) -> int:
    count: int = await rbm.pools[0].fetchval(
        "SELECT count(*) FROM reading_rollups WHERE participant_id = $1", participant
    )
    return count


async def test_kri_tick_deletes_rollups_past_the_setting_and_keeps_recent_ones(rbm: Rbm) -> None:
    participant = unique_id("P")
    at = now()
    ages = (40, 31, 29, 1)  # days; the setting keeps 30
    async with rbm.pools[0].acquire() as conn, conn.transaction():
        await record_rollups_for_timeline(
            conn, as_uploads([reading(participant, at - timedelta(days=d)) for d in ages])
        )
    assert await buckets(rbm, participant) == 4
    cfg = rbm.settings.kri_config()
    assert cfg.rollup_days == 30
    await tick(rbm, cfg)
    kept = await rbm.pools[0].fetch(
        "SELECT bucket FROM reading_rollups WHERE participant_id = $1 ORDER BY bucket", participant
    )
    assert [round((at - r["bucket"]) / timedelta(days=1)) for r in kept] == [29, 1]
    shorter = replace(cfg, rollup_days=0.5)
    await tick(rbm, shorter)
    assert await buckets(rbm, participant) == 0


async def test_a_large_backlog_of_rollups_goes_a_slice_at_a_time(rbm: Rbm) -> None:
    participant = unique_id("P")
    # younger than the service's own 30-day pruning, which its KRI tick may run at any
    # moment: only the calls below delete these
    old = now() - timedelta(days=10)
    async with rbm.pools[0].acquire() as conn, conn.transaction():
        await record_rollups_for_timeline(
            conn,
            as_uploads([reading(participant, old + timedelta(minutes=5 * i)) for i in range(7)]),
        )
    async with rbm.pools[0].acquire() as conn:
        before = now() - timedelta(days=5)
        assert await forget_rollups_before(conn, before, 3) == 3  # a full slice, no more
        assert await buckets(rbm, participant) >= 4
        while await forget_rollups_before(conn, before, 3) == 3:
            pass
    assert await buckets(rbm, participant) == 0

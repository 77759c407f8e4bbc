"""Periodic loops survive failed passes, and `/readyz` reports one that stopped."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from trialstream.http import ops_router
from trialstream.loops import FAILURES, Loops, LoopStopped, skip_or_raise


class Passes:
    """Work that fails with the given errors first, then counts passes."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.done = 0
        self.reached = asyncio.Event()
        self.wanted = 1

    async def __call__(self) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.done += 1
        if self.done >= self.wanted:
            self.reached.set()


def _failures(loop: str, kind: str) -> float:
    return FAILURES.labels(loop, kind)._value.get()


async def test_a_lost_connection_and_a_bug_do_not_end_the_loop() -> None:
    work = Passes(asyncpg.InterfaceError("connection is closed"), KeyError("site_id"))
    work.wanted = 2
    loops = Loops()
    transient, errors = _failures("l1", "transient"), _failures("l1", "error")
    loops.every("l1", 0.001, work)
    async with asyncio.timeout(5):
        await work.reached.wait()
    await loops.check()  # still running: ready
    await loops.stop()
    assert work.done >= 2
    assert _failures("l1", "transient") == transient + 1
    assert _failures("l1", "error") == errors + 1


async def test_a_loop_that_ended_makes_the_service_unready() -> None:
    loops = Loops()
    loops.every("kris", 0.001, Passes())
    loops.every("escalation", 3600, Passes())
    loops._tasks["kris"].cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    with pytest.raises(LoopStopped, match=r"kris \(cancelled\)"):
        await loops.check()

    app = FastAPI()
    app.include_router(ops_router([loops.check]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert "kris (cancelled)" in r.json()["failures"][0]
    assert "escalation" not in r.json()["failures"][0]
    await loops.stop()


async def test_stop_waits_for_the_pass_under_way_and_the_loops_can_start_again() -> None:
    loops, finished = Loops(), []
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.append(True)

    loops.every("slow", 3600, slow)
    await started.wait()
    await loops.stop()
    assert finished == [True]

    again = Passes()
    loops.every("slow", 3600, again)  # the name is free again, and stop() was reset
    async with asyncio.timeout(5):
        await again.reached.wait()
    await loops.stop()


async def test_stop_cancels_an_interruptible_pass_and_still_awaits_the_others() -> None:
    """A follower's pass can wait seconds on a fetch the broker holds; stopping cancels
    it, while a pass that writes is still let finish."""
    loops, finished = Loops(), []
    following, writing = asyncio.Event(), asyncio.Event()

    async def follow() -> None:
        following.set()
        await asyncio.sleep(3600)  # a held fetch, as long as you like

    async def write() -> None:
        writing.set()
        await asyncio.sleep(0.05)
        finished.append("write")

    loops.every("follow", 3600, follow, interruptible=True)
    loops.every("write", 3600, write)
    await following.wait()
    await writing.wait()
    async with asyncio.timeout(5):
        await loops.stop()
    assert finished == ["write"]
    await loops.check()  # a stopped service's cancelled follower is not a failure


async def test_first_after_delays_the_first_pass() -> None:
    loops, work = Loops(), Passes()
    loops.every("later", 0.001, work, first_after=3600)
    await asyncio.sleep(0.05)
    assert work.done == 0
    await loops.stop()
    assert work.done == 0


def test_an_item_that_fails_on_its_own_is_counted_and_skipped_a_transient_one_is_raised() -> None:
    def skipped() -> float:
        labels = {"loop": "unit-items"}
        return REGISTRY.get_sample_value("trialstream_loop_items_skipped_total", labels) or 0.0

    before = skipped()
    done = []
    for item in ["P-1", "P-2", "P-3"]:
        try:
            if item == "P-2":
                raise IsADirectoryError(21, "Is a directory", "/usr/share/zoneinfo/Europe")
            done.append(item)
        except Exception as exc:
            skip_or_raise("unit-items", item, exc)
    assert done == ["P-1", "P-3"]
    assert skipped() == before + 1
    with pytest.raises(ConnectionResetError):  # the whole pass is retried
        skip_or_raise("unit-items", "P-4", ConnectionResetError("connection reset by peer"))
    assert skipped() == before + 1

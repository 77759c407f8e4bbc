"""Periodic background work (schedulers, escalation, KRIs, silences, dispatch), run one way.

Every service had its own loop, each catching its own set of exceptions: an
`asyncpg.InterfaceError` (a connection lost mid-query, not a `PostgresError`) or one bad
row ended the ePRO and telehealth schedulers, the KRI loop and the retention dispatcher,
silently, while the process kept answering `/readyz`. Here:

- a transient failure (`trialstream.transient`) is logged as a warning and the next pass
  retries it; any other failure is logged with its stack and the next pass runs too, so
  one bad participant cannot stop the work for everyone else;
- a loop that ends anyway (a bug that escapes, a cancelled task) is reported by
  `Loops.check`, which each service adds to its `/readyz`;
- failures are counted per loop in `trialstream_loop_failures_total`;
- a pass over many participants isolates each one (`skip_or_raise`): one whose own work
  fails is logged, counted and skipped, and the others are done in that same pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter

from trialstream.http import NotReady
from trialstream.transient import is_transient

log = structlog.get_logger(__name__)

FAILURES = Counter(
    "trialstream_loop_failures_total",
    "Failed passes of a periodic background loop (the next pass runs regardless)",
    ["loop", "kind"],
)

SKIPPED = Counter(
    "trialstream_loop_items_skipped_total",
    "Items (a participant, an assignment) whose own work failed in a pass; the rest of the "
    "pass went on",
    ["loop"],
)

Work = Callable[[], Awaitable[object]]


def skip_or_raise(loop: str, item: str, exc: BaseException) -> None:
    """Call from `except` around one item's work in a pass. A transient failure is raised
    again (the whole pass is retried); anything else is that item's own: logged with its
    (pseudonymous) key and the stack, counted in trialstream_loop_items_skipped_total, and
    the pass goes on with the next item, so one bad participant stops nobody else."""
    if is_transient(exc):
        raise exc
    SKIPPED.labels(loop).inc()
    log.error("one item of a periodic pass failed, skipped", loop=loop, item=item, exc_info=exc)


class LoopStopped(NotReady):
    """A periodic loop is no longer running although its service is."""


async def every(
    name: str, seconds: float, work: Work, stop: asyncio.Event, *, first_after: float = 0.0
) -> None:
    """Run `work` after `first_after` seconds, then every `seconds`, until `stop` is set.
    A failed pass is logged and counted, never fatal: the next pass is the retry."""
    await _wait(stop, first_after)
    while not stop.is_set():
        try:
            await work()
        except Exception as exc:
            if is_transient(exc):
                FAILURES.labels(name, "transient").inc()
                log.warning("periodic work failed, next pass retries", loop=name, error=repr(exc))
            else:
                FAILURES.labels(name, "error").inc()
                log.exception("periodic work crashed, next pass runs regardless", loop=name)
        await _wait(stop, seconds)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


@dataclass
class Loops:
    """The periodic loops of one service process: started together, stopped together,
    and checked by `/readyz`."""

    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _interruptible: set[str] = field(default_factory=set)

    def every(
        self,
        name: str,
        seconds: float,
        work: Work,
        *,
        first_after: float = 0.0,
        interruptible: bool = False,
    ) -> None:
        """Start `every(...)` until `stop()`; names are unique within a process.
        `interruptible`: a pass that only reads into memory (following a topic, fetching
        keys) is cancelled at `stop()` instead of awaited: a follower's pass can sit behind
        a fetch the broker holds for seconds (decision 0095), and nothing is lost."""
        if name in self._tasks:
            raise ValueError(f"a loop named {name!r} is already running")
        loop = every(name, seconds, work, self._stop, first_after=first_after)
        self._tasks[name] = asyncio.create_task(loop, name=name)
        if interruptible:
            self._interruptible.add(name)

    async def check(self) -> None:
        """A readiness check: raises `LoopStopped` naming every loop that ended early."""
        stopped = []
        for name, task in self._tasks.items():
            if not task.done():
                continue
            exc = None if task.cancelled() else task.exception()
            stopped.append(f"{name} ({'cancelled' if exc is None else type(exc).__name__})")
        if stopped and not self._stop.is_set():
            raise LoopStopped("periodic loops stopped: " + ", ".join(stopped))

    async def stop(self) -> None:
        """Let each loop finish its current pass (cancel the interruptible ones), then
        return."""
        self._stop.set()
        for name in self._interruptible:
            self._tasks[name].cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        self._interruptible.clear()
        self._stop = asyncio.Event()  # the service may be started again (tests restart apps)

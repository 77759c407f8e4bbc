"""Live alert feed: PostgreSQL LISTEN/NOTIFY fanned out to Server-Sent Events.

Every transaction that adds or changes alerts queues a `pg_notify` (repository.notify);
PostgreSQL delivers it to every listening connection when, and only if, it commits. Each
monitoring process keeps ONE listening connection and hands each notification to the
queues of its own SSE clients, so a browser connected to any replica hears about an alert
inserted by any other replica within milliseconds, with no polling. Clients filter by the
site their staff may read. After a lost connection (or a client too slow to keep up) the
client is told to `resync`: notifications sent meanwhile are gone, so it re-reads the list.
sse-starlette writes the stream: pings against idle proxies, and it ends open streams when
uvicorn shuts down (a plain StreamingResponse would hold shutdown for its grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog
from sse_starlette import ServerSentEvent
from trialstream.identity import DEFAULT_STUDY

from monitoring.repository import NOTIFY_CHANNEL

log = structlog.get_logger(__name__)

RESYNC: dict[str, Any] = {"change": "resync"}


class LiveFeed:
    def __init__(self, dsn: str, *, queue_size: int = 256) -> None:
        self._dsn = dsn
        self._queue_size = queue_size
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self.listening = asyncio.Event()

    def _deliver(self, message: dict[str, Any]) -> None:
        for queue in self._clients:
            if queue.full():  # a stalled client: drop its backlog, it re-reads the list
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)
            else:
                queue.put_nowait(message)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            self._deliver(json.loads(str(payload)))
        except ValueError:
            log.warning("undecodable alert notification")

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop`; reconnect with backoff when the connection is lost."""
        failures = 0
        while not stop.is_set():
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                failures += 1
                log.warning("live feed cannot listen, will retry", error=repr(exc))
                await _wait(stop, min(0.2 * 2**failures, 5.0))
                continue
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                if failures:
                    self._deliver(RESYNC)
                failures = 0
                self.listening.set()
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            if lost.is_set() and not stop.is_set():
                failures += 1
                log.warning("live feed connection lost, reconnecting")

    @contextlib.asynccontextmanager
    async def subscription(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_size)
        self._clients.add(queue)
        try:
            yield queue
        finally:
            self._clients.discard(queue)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def sse_stream(
    feed: LiveFeed, site: str | None, study: str = DEFAULT_STUDY
) -> AsyncIterator[ServerSentEvent]:
    """The events for one client: alert changes of `study` at `site` (None = every site);
    an alert of a participant not enrolled here yet counts as the default study's."""
    async with feed.subscription() as queue:
        yield ServerSentEvent(data="{}", event="ready", retry=2000)
        while True:
            message = await queue.get()
            if message is RESYNC:
                yield ServerSentEvent(data=json.dumps(message), event="alert")
                continue
            ours = (message.get("study_id") or DEFAULT_STUDY) == study
            if ours and (site is None or message.get("site_id") == site):
                yield ServerSentEvent(data=json.dumps(message), event="alert")

"""Composition root: settings -> broker and scoring subscriber -> an ASGI app for ops routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import structlog
from fastapi import FastAPI
from trialstream.consumer import TRANSIENT_ERRORS
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from anomaly.handlers import subscribe_scoring
from anomaly.rules import ScoringConfig
from anomaly.service import Backlog, check_silences
from anomaly.service_info import SERVICE
from anomaly.settings import AnomalySettings

log = structlog.get_logger(__name__)


async def watch_silences(
    runtime: Runtime, config: ScoringConfig, backlog: Backlog, every_seconds: float
) -> None:
    """The wall-clock half of dropout detection, while the service runs."""
    if not config.device_quality:
        return
    while True:
        await asyncio.sleep(every_seconds)
        if backlog.catching_up():
            continue
        try:
            found = await check_silences(runtime.pool, config, datetime.now(UTC))
        except TRANSIENT_ERRORS as exc:
            log.warning("silence check failed; will retry", error=repr(exc))
            continue
        if found:
            log.info("participants fell silent", alerts=found)


def create_app(
    settings: AnomalySettings | None = None, config: ScoringConfig | None = None
) -> FastAPI:
    settings = settings or AnomalySettings()
    runtime = Runtime(settings, make_broker(settings.kafka_bootstrap_servers, client_id="anomaly"))
    config = config or ScoringConfig()
    backlog = Backlog(settings.max_batch)
    subscribe_scoring(runtime, settings, config, backlog)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            watch = asyncio.create_task(
                watch_silences(runtime, config, backlog, settings.silence_check_seconds)
            )
            try:
                yield
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch

    app = FastAPI(title="trialstream anomaly", version="1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(ops_router([runtime.check_database, runtime.check_broker]))
    app.state.runtime = runtime
    return app

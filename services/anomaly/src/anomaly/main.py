"""Composition root: settings -> broker and scoring subscriber -> an ASGI app (the scoring
in force, and the ops routes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import structlog
from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from anomaly.api import router
from anomaly.config import ScoringConfig
from anomaly.service import Backlog, check_silences
from anomaly.service_info import SERVICE
from anomaly.settings import AnomalySettings
from anomaly.studies import StudyScoring
from anomaly.subscribers import subscribe_scoring

log = structlog.get_logger(__name__)


async def check_silences_now(runtime: Runtime, config: ScoringConfig, backlog: Backlog) -> None:
    """The wall-clock half of dropout detection: one pass of its periodic loop. It waits
    while the consumer catches up, when queued readings would make participants look
    silent (so the first pass is one period after start-up, too)."""
    if backlog.catching_up():
        return
    found = await check_silences(runtime.pool, config, datetime.now(UTC))
    if found:
        log.info("participants fell silent", alerts=found)


def create_app(
    settings: AnomalySettings | None = None, config: ScoringConfig | None = None
) -> FastAPI:
    settings = settings or AnomalySettings()
    runtime = Runtime(settings, make_broker(settings.kafka_bootstrap_servers, client_id="anomaly"))
    config = config or ScoringConfig.default()
    backlog = Backlog(settings.max_batch)
    scoring = StudyScoring(config, runtime.studies)
    subscribe_scoring(runtime, settings, scoring, backlog)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            if config.device_quality:
                runtime.loops.every(
                    "anomaly-silences",
                    settings.silence_check_seconds,
                    lambda: check_silences_now(runtime, config, backlog),
                    first_after=settings.silence_check_seconds,
                )
            yield

    app = FastAPI(title="trialstream anomaly", version="1.0", lifespan=lifespan)
    install_error_handlers(app, rate_limit=settings.rate_limit())
    app.include_router(router)
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    app.state.scoring = scoring
    return app

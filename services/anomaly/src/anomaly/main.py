"""Composition root: settings -> broker and scoring subscriber -> an ASGI app for ops routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from anomaly.handlers import subscribe_scoring
from anomaly.rules import ScoringConfig
from anomaly.service_info import SERVICE
from anomaly.settings import AnomalySettings


def create_app(
    settings: AnomalySettings | None = None, config: ScoringConfig | None = None
) -> FastAPI:
    settings = settings or AnomalySettings()
    runtime = Runtime(settings, make_broker(settings.kafka_bootstrap_servers, client_id="anomaly"))
    subscribe_scoring(runtime, settings, config or ScoringConfig())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            yield

    app = FastAPI(title="trialstream anomaly", version="1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(ops_router([runtime.check_database, runtime.check_broker]))
    app.state.runtime = runtime
    return app

"""Composition root: settings -> broker, subscribers, routes -> one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from monitoring.handlers import build_router, subscribe
from monitoring.rbm.handlers import running_rbm, subscribe_rbm
from monitoring.service_info import SERVICE
from monitoring.settings import MonitoringSettings


def create_app(settings: MonitoringSettings | None = None) -> FastAPI:
    settings = settings or MonitoringSettings()
    runtime = Runtime(
        settings, make_broker(settings.kafka_bootstrap_servers, client_id="monitoring")
    )
    subscribe(runtime)
    subscribe_rbm(runtime, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True), running_rbm(runtime, settings):
            yield

    app = FastAPI(
        title="trialstream monitoring",
        version="1.0",
        description="Site staff alert inbox: list, read and acknowledge alerts, with an audit trail.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(build_router(runtime, settings))
    app.include_router(ops_router([runtime.check_database, runtime.check_broker]))
    app.state.runtime = runtime
    return app

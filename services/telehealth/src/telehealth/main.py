"""Composition root: settings -> broker, subscribers, routes, scheduler -> one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from trialstream.events.base import utcnow
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from telehealth.api import router
from telehealth.context import Context
from telehealth.service import scheduler
from telehealth.service_info import SERVICE
from telehealth.settings import TelehealthSettings
from telehealth.subscribers import subscribe


def create_app(
    settings: TelehealthSettings | None = None, clock: Callable[[], datetime] = utcnow
) -> FastAPI:
    """`clock` is injectable so tests can step through reminder times and window ends."""
    settings = settings or TelehealthSettings()
    runtime = Runtime(
        settings, make_broker(settings.kafka_bootstrap_servers, client_id="telehealth")
    )
    ctx = Context(runtime, settings, clock)
    subscribe(ctx)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            runtime.loops.every(
                "telehealth-scheduler",
                settings.scheduler_interval_seconds,
                lambda: scheduler.run_once(runtime.pool, clock),
            )
            yield

    app = FastAPI(
        title="trialstream telehealth",
        version="1.0",
        description="Protocol visit windows, staff availability, conflict-free booking, "
        "urgent visits from alerts, iCalendar feeds.",
        lifespan=lifespan,
    )
    install_error_handlers(app, rate_limit=settings.rate_limit())
    app.include_router(router)
    app.include_router(ops_router(runtime.ready_checks))
    app.state.context = ctx
    app.state.runtime = runtime
    return app

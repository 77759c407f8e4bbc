"""Composition root: settings -> broker, subscribers, routes, live feed, escalation checker
-> one ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from monitoring.dashboard import STATIC_PATH, dashboard_router, static_files
from monitoring.escalation import EscalationChecker
from monitoring.handlers import build_router, subscribe
from monitoring.live import LiveFeed
from monitoring.rbm.handlers import start_rbm_loops, subscribe_rbm
from monitoring.service_info import SERVICE
from monitoring.settings import MonitoringSettings


def create_app(settings: MonitoringSettings | None = None) -> FastAPI:
    settings = settings or MonitoringSettings()
    runtime = Runtime(
        settings, make_broker(settings.kafka_bootstrap_servers, client_id="monitoring")
    )
    subscribe(runtime, settings.flag_rules())
    subscribe_rbm(runtime, settings)
    feed = LiveFeed(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            start_rbm_loops(runtime, settings)
            checker = EscalationChecker(runtime.pool, settings)
            app.state.escalation = checker
            runtime.loops.every(
                "monitoring-escalation", settings.escalation_check_seconds, checker.run_pass
            )
            # Not periodic: it listens, and reconnects with backoff when the connection drops.
            stop = asyncio.Event()
            live = asyncio.create_task(feed.run(stop), name="monitoring-live-feed")
            try:
                yield
            finally:
                stop.set()
                await live

    app = FastAPI(
        title="trialstream monitoring",
        version="1.0",
        description="Site staff alert inbox (acknowledge, resolve, escalation, audit trail), "
        "a live feed over Server-Sent Events, participant timelines and the staff dashboard.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(build_router(runtime, settings, feed))
    app.include_router(dashboard_router(runtime, settings))
    app.mount(STATIC_PATH, static_files(), name="dashboard-static")
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    app.state.live_feed = feed
    return app

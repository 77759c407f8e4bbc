"""Composition root: settings -> broker, subscribers, routes, live feed, escalation checker
and KRI evaluation -> one ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from monitoring.api import router
from monitoring.api.pages import STATIC_PATH, static_files
from monitoring.context import Context
from monitoring.escalation import EscalationChecker
from monitoring.live import LiveFeed
from monitoring.rbm import kri_evaluation
from monitoring.service_info import SERVICE
from monitoring.settings import MonitoringSettings
from monitoring.subscribers import subscribe


def create_app(settings: MonitoringSettings | None = None) -> FastAPI:
    settings = settings or MonitoringSettings()
    runtime = Runtime(
        settings, make_broker(settings.kafka_bootstrap_servers, client_id="monitoring")
    )
    rules = settings.flag_rules()
    subscribe(runtime, rules)
    feed = LiveFeed(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            kri_config = settings.kri_config()
            runtime.loops.every(
                "monitoring-kris",
                settings.kri_interval_seconds,
                lambda: kri_evaluation.evaluate(runtime.pool, kri_config, rules, runtime.studies),
            )
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
        "a live feed over Server-Sent Events, participant timelines, risk-based monitoring "
        "(KRIs, discrepancy flags) and the staff dashboard.",
        lifespan=lifespan,
    )
    install_error_handlers(app, rate_limit=settings.rate_limit())
    app.include_router(router)
    app.mount(STATIC_PATH, static_files(), name="dashboard-static")
    app.include_router(ops_router(runtime.ready_checks))
    app.state.context = Context(runtime, settings, feed)
    app.state.runtime = runtime
    app.state.live_feed = feed
    return app

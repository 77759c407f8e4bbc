"""Composition root: settings -> broker, subscribers, channel, background loops, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from retention import risk, scoring, service
from retention.api import router
from retention.channels import Channel, LocalChannel, WebhookChannel
from retention.dispatch import Dispatcher
from retention.service import Clock, Policy
from retention.service_info import SERVICE
from retention.settings import RetentionSettings
from retention.subscribers import subscribe
from retention.triggers import EscalationPolicy, SilencePolicy

log = structlog.get_logger(__name__)


def policy_from(settings: RetentionSettings) -> Policy:
    return Policy(
        default_cap=settings.max_nudges_per_day,
        escalation=EscalationPolicy(
            settings.escalate_after_epro_misses, settings.escalate_after_visit_misses
        ),
        silence=SilencePolicy(
            settings.low_wear_waking_hours, settings.silent_hours, settings.silent_escalate_hours
        ),
    )


def create_app(settings: RetentionSettings | None = None, clock: Clock = service.utcnow) -> FastAPI:
    settings = settings or RetentionSettings()
    runtime = Runtime(
        settings, make_broker(settings.kafka_bootstrap_servers, client_id="retention")
    )
    policy = policy_from(settings)
    model = risk.train()
    subscribe(runtime, settings, policy, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.webhook_timeout_seconds)
        async with (
            running(SERVICE, runtime, relay_outbox=True),
            httpx.AsyncClient(timeout=timeout) as http,
        ):
            channel: Channel = (
                WebhookChannel(
                    str(settings.webhook_url),
                    http,
                    attempts=settings.webhook_attempts,
                    backoff_seconds=settings.webhook_backoff_seconds,
                )
                if settings.webhook_url
                else LocalChannel(runtime.pool)
            )
            dispatcher = Dispatcher(
                runtime.pool, channel, clock, max_dispatches=settings.max_dispatches
            )
            app.state.dispatcher = dispatcher

            async def sweep() -> int:
                return await service.sweep_silence(runtime.pool, policy, clock(), runtime.studies)

            async def rescore() -> int:
                return await scoring.score_all(
                    runtime.pool, model, clock(), settings.risk_high_cutoff
                )

            loops = runtime.loops
            loops.every("retention-dispatch", settings.dispatch_interval_seconds, dispatcher.drain)
            loops.every("retention-silence-sweep", settings.sweep_interval_seconds, sweep)
            loops.every("retention-risk-scores", settings.risk_interval_seconds, rescore)
            yield

    app = FastAPI(
        title="trialstream retention",
        version="1.0",
        description="Nudges in the participant's language and timezone, with quiet hours, caps, "
        "escalation to coordinators, a queryable journey and a dropout-risk outreach list.",
        lifespan=lifespan,
    )
    install_error_handlers(app, rate_limit=settings.rate_limit())
    app.include_router(router)
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    app.state.model = model
    app.state.policy = policy
    return app

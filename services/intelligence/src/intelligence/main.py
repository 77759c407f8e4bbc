"""Composition root: settings -> broker, the enrolment subscriber, the risk model, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from intelligence.api import router
from intelligence.api.pages import STATIC_PATH, static_files
from intelligence.api.pages import router as pages
from intelligence.domain import risk
from intelligence.service_info import SERVICE
from intelligence.settings import IntelligenceSettings
from intelligence.subscribers import subscribe


def create_app(settings: IntelligenceSettings | None = None) -> FastAPI:
    settings = settings or IntelligenceSettings()
    runtime = Runtime(
        settings, make_broker(settings.kafka_bootstrap_servers, client_id="intelligence")
    )
    subscribe(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=False):
            yield

    app = FastAPI(
        title="trialstream intelligence",
        version="1.0",
        description="Pre-screening of candidates' FHIR records against studies' eligibility "
        "criteria, a ranked and explained list per study and site, screen-failure risk, "
        "referral conversion, and enrollment forecasts (Poisson-gamma) with intervals.",
        lifespan=lifespan,
    )
    install_error_handlers(
        app, max_body_bytes=settings.max_upload_bytes, rate_limit=settings.rate_limit()
    )
    app.include_router(router)
    app.include_router(pages)
    app.mount(STATIC_PATH, static_files(), name="portfolio-static")
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    app.state.model = risk.train()  # seeded: the same model in every replica
    return app

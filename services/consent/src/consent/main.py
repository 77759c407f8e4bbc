"""Composition root: settings -> broker, consumer, routes -> one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from consent import subscribers
from consent.api import app_router, erasure_router, staff_router
from consent.service_info import SERVICE
from consent.settings import ConsentSettings


def create_app(settings: ConsentSettings | None = None) -> FastAPI:
    settings = settings or ConsentSettings()
    runtime = Runtime(settings, make_broker(settings.kafka_bootstrap_servers, client_id="consent"))
    subscribers.subscribe(runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            yield

    app = FastAPI(
        title="trialstream consent",
        version="1.0",
        description="eConsent: versioned consent documents per study, site and language; "
        "participant signatures with re-authentication, investigator countersignatures, "
        "consent scopes that gate data collection, withdrawal, FHIR Consent export.",
        lifespan=lifespan,
    )
    install_error_handlers(
        app, max_body_bytes=2 * settings.max_document_bytes, rate_limit=settings.rate_limit()
    )
    app.include_router(app_router)
    app.include_router(staff_router)
    app.include_router(erasure_router)
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    return app

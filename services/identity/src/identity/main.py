"""Composition root: settings -> broker, signing key, routes -> one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.identity import SigningKey
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from identity import service
from identity.api import router
from identity.service_info import SERVICE
from identity.settings import IdentitySettings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    runtime = Runtime(settings, make_broker(settings.kafka_bootstrap_servers, client_id="identity"))

    runtime.staff.issued_here()
    runtime.staff.takes_admin_token = True  # the bootstrap credential's one home

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            configured = settings.signing_key_pem
            key = (
                SigningKey.from_pem(configured.get_secret_value().encode("ascii"))
                if configured is not None
                else await service.signing_key(runtime.pool)
            )
            app.state.signing_key = key
            runtime.staff.verifier.set_keys(key.jwks())
            yield

    app = FastAPI(
        title="trialstream identity",
        version="1.0",
        description="The embedded issuer of staff access tokens: sign-in, OIDC discovery and "
        "keys, logout, people and their roles per study and site, revocation.",
        lifespan=lifespan,
    )
    install_error_handlers(app, rate_limit=settings.rate_limit())
    app.include_router(router)
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    return app

"""Composition root: settings -> broker, routes -> one ASGI app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from ingest import subscribers
from ingest.api import router
from ingest.exports_api import router as exports_router
from ingest.exports_cleanup import expire_old
from ingest.exports_jobs import ExportRunner
from ingest.repository import ArchiveDays
from ingest.service import maintain_archive
from ingest.service_info import SERVICE
from ingest.settings import IngestSettings
from ingest.tiering_jobs import Tierer
from ingest.tiering_store import TierStore


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = Runtime(settings, make_broker(settings.kafka_bootstrap_servers, client_id="ingest"))
    archive_days = ArchiveDays()
    # Reads consult the tier whether or not this replica tiers (decision 0077).
    tier_store = TierStore(settings.archive_tier_url, settings.archive_tier_storage_options)
    subscribers.subscribe(runtime, tier_store, settings.export_dir)  # consents, erasures
    worker = f"ingest-{settings.replica}-{uuid.uuid4().hex[:8]}"

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            runtime.loops.every(
                "ingest-archive-partitions",
                settings.archive_maintenance_seconds,
                lambda: maintain_archive(
                    runtime.pool,
                    archive_days,
                    days_ahead=settings.archive_days_ahead,
                    detach_after_days=settings.archive_detach_after_days,
                ),
            )
            tierer = None
            if settings.archive_tier_after_days is not None:
                tierer = Tierer(
                    runtime.pool,
                    tier_store,
                    worker=worker,
                    after_days=settings.archive_tier_after_days,
                    buckets=settings.archive_tier_buckets,
                    lease_seconds=settings.archive_tier_lease_seconds,
                )
                runtime.loops.every(
                    "ingest-archive-tiering", settings.archive_maintenance_seconds, tierer.run_all
                )
            if settings.export_jobs:
                exports = ExportRunner(
                    runtime.pool,
                    settings.export_dir,
                    worker=worker,
                    tier_store=tier_store,
                    lease_seconds=settings.export_lease_seconds,
                    concurrency=settings.export_concurrency,
                )
                runtime.loops.every("ingest-exports", settings.export_poll_seconds, exports.run_all)
            runtime.loops.every(
                "ingest-exports-expiry",
                settings.export_expiry_seconds,
                lambda: expire_old(runtime.pool, settings.export_dir, settings.export_keep_days),
            )
            try:
                yield
            finally:
                if tierer is not None:
                    tierer.stop()  # after its current day; a day cut short is redone
                if settings.export_jobs:
                    exports.stop()  # after its current day: the job waits for a replica

    app = FastAPI(
        title="trialstream ingest",
        version="1.0",
        description="Device uploads of wearable readings; device and participant enrolment.",
        lifespan=lifespan,
    )
    install_error_handlers(
        app, max_body_bytes=settings.max_request_bytes, rate_limit=settings.rate_limit()
    )
    app.include_router(router)
    app.include_router(exports_router)
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    app.state.archive_days = archive_days
    app.state.tier_store = tier_store
    return app

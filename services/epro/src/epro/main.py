"""Composition root: settings -> broker, subscribers, scheduler, routes -> one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from trialstream.http import install_error_handlers, ops_router
from trialstream.kafka import make_broker
from trialstream.runtime import Runtime, running

from epro import due_and_missed, repository, service
from epro.api import router
from epro.assignments import ScheduleSource, StudyVersions, assign_study_versions
from epro.domain.definitions import Catalog, Questionnaire, shipped
from epro.domain.schedules import Protocol
from epro.service_info import SERVICE
from epro.settings import EproSettings
from epro.subscribers import subscribe


def load_protocol(settings: EproSettings) -> Protocol:
    source = settings.protocol_path or files("epro") / "protocol.json"
    return Protocol.model_validate_json(source.read_text("utf-8"))


def load_definitions(settings: EproSettings) -> list[Questionnaire]:
    found = shipped()
    if settings.questionnaires_dir is not None:
        found += [
            Questionnaire.model_validate_json(p.read_text("utf-8"))
            for p in sorted(settings.questionnaires_dir.glob("*.json"))
        ]
    return found


def create_app(settings: EproSettings | None = None) -> FastAPI:
    settings = settings or EproSettings()
    runtime = Runtime(settings, make_broker(settings.kafka_bootstrap_servers, client_id="epro"))
    protocol = load_protocol(settings)
    definitions = load_definitions(settings)
    catalog = Catalog([])
    source = ScheduleSource(protocol.schedules, runtime.studies, catalog)
    subscribe(runtime, source)
    study_versions = StudyVersions()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(SERVICE, runtime, relay_outbox=True):
            # Refuses to start if a shipped definition changed under a published version.
            await service.publish_questionnaires(runtime.pool, catalog, definitions)
            for q in await repository.questionnaires(runtime.pool):
                catalog.add(q)
            runtime.loops.every(
                "epro-study-schedules",
                settings.study_schedules_interval_seconds,
                lambda: assign_study_versions(runtime.pool, source, study_versions),
            )
            if settings.scheduler_enabled:
                runtime.loops.every(
                    "epro-scheduler",
                    settings.scheduler_interval_seconds,
                    lambda: due_and_missed.tick(runtime.pool),
                )
            yield

    app = FastAPI(
        title="trialstream epro",
        version="1.0",
        description="Questionnaires, schedules in each participant's timezone, responses from the "
        "app, compliance and FHIR export for site staff.",
        lifespan=lifespan,
    )
    install_error_handlers(app, rate_limit=settings.rate_limit())
    app.include_router(router)
    app.include_router(ops_router(runtime.ready_checks))
    app.state.runtime = runtime
    app.state.catalog = catalog
    app.state.schedule_source = source
    return app

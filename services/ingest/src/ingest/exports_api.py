"""Export routes (decision 0076): a data manager starts a job, follows its progress and
downloads its files. The job itself runs in the background (exports_jobs.py)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from trialstream import audit
from trialstream.errors import Kind, Refused
from trialstream.events.base import ParticipantId, StudyId
from trialstream.identity import PERMISSIONS, Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import (
    CurrentPrincipal,
    allowed,
    audited_as,
    check_allowed,
    forbidden,
)

from ingest import exports_repository as repo
from ingest import repository
from ingest.domain import check_study
from ingest.exports import ExportFormat, ExportJob, present, within_scope
from ingest.exports_jobs import job_dir
from ingest.settings import IngestSettings

router = APIRouter(tags=["exports"])


class ExportRequest(BaseModel):
    study_id: StudyId
    participant_id: ParticipantId | None = Field(
        default=None, description="Only this participant's readings (default: the whole study)"
    )
    format: ExportFormat = Field(description="csv, parquet or fhir-ndjson (FHIR Observations)")


def _settings(runtime: CurrentRuntime) -> IngestSettings:
    assert isinstance(runtime.settings, IngestSettings)
    return runtime.settings


Settings = Annotated[IngestSettings, Depends(_settings)]


def export_scope(principal: Principal, study_id: str) -> tuple[str, ...] | None:
    """The sites whose participants this person may export in the study: None for every
    site (a role with EXPORT for the whole study), else the sites of their site-limited
    grants that allow it. 403 `role_not_allowed` when no role of theirs in the study does."""
    grants = [
        g
        for g in principal.grants
        if g.role in PERMISSIONS[Action.EXPORT] and g.covers(study_id, None)
    ]
    if not grants:
        raise forbidden(Action.EXPORT, study_id)
    if any(g.site_id is None for g in grants):
        return None
    return tuple(sorted({g.site_id for g in grants if g.site_id is not None}))


async def _visible_job(runtime: CurrentRuntime, by: Principal, export_id: uuid.UUID) -> ExportJob:
    """The job, if this person may export every participant it holds; else 404 (another
    study's or another site's job is not there for them)."""
    job = await repo.get(runtime.pool, export_id)
    if (
        job is not None
        and by.allows(Action.EXPORT, job.study_id)
        and within_scope(export_scope(by, job.study_id), job.site_ids)
    ):
        return job
    raise Refused(Kind.NOT_FOUND, "unknown_export", f"no export '{export_id}' of yours")


@router.post(
    "/v1/exports",
    status_code=202,
    summary="Start an export job of a study's (or one participant's) readings",
    dependencies=[allowed(Action.EXPORT)],
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def start_export(
    runtime: CurrentRuntime, body: ExportRequest, by: CurrentPrincipal
) -> dict[str, Any]:
    """Queued at once (202); a background job writes the files. Follow it with
    `GET /v1/exports/{export_id}`."""
    scope = export_scope(by, body.study_id)
    check_study(runtime.studies, body.study_id)
    if body.participant_id is not None:
        found = await repository.get_participant(runtime.pool, body.participant_id)
        if (
            found is None
            or found.study_id != body.study_id
            or (scope is not None and found.site_id not in scope)
        ):
            raise Refused(
                Kind.NOT_FOUND,
                "unknown_participant",
                f"no participant '{body.participant_id}' in your sites of study '{body.study_id}'",
            )
    async with runtime.pool.acquire() as conn, conn.transaction():
        job = await repo.insert(
            conn, uuid.uuid4(), body.study_id, body.participant_id, scope, body.format, by.actor
        )
        await audit.record(
            conn,
            **audited_as(by, body.study_id),
            action="export.requested",
            entity="export",
            entity_id=str(job.export_id),
            new={
                "study_id": body.study_id,
                "participant_id": body.participant_id,
                "site_ids": list(scope) if scope is not None else None,
                "format": str(body.format),
                "as_of": job.as_of.isoformat(),
            },
        )
    return present(job, [])


@router.get(
    "/v1/exports",
    summary="A study's export jobs, newest first (those within the caller's sites)",
    dependencies=[allowed(Action.EXPORT)],
    responses={403: {}, 422: {}},
)
async def list_exports(
    runtime: CurrentRuntime,
    by: CurrentPrincipal,
    study: Annotated[StudyId, Query(description="The study whose exports are listed")],
    site: Annotated[
        str | None, Query(description="Only exports of this site's participants alone")
    ] = None,
    mine: Annotated[bool, Query(description="Only the exports the caller started")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Every job of the study this person could open with `GET /v1/exports/{export_id}`:
    a role that exports the study, and (for a site-limited role) jobs holding only their
    sites; their own included. Expired jobs are listed, without files. `site` keeps the
    jobs of that site alone (403 `forbidden_site` for a site that is not the caller's)."""
    scope = export_scope(by, study)
    if site is not None:
        check_allowed(by, Action.EXPORT, site, study)
        scope = (site,)
    check_study(runtime.studies, study)
    found = await repo.of_study(runtime.pool, study, by.actor if mine else None, limit)
    return {
        "study_id": study,
        "exports": [
            present(job, parts) for job, parts in found if within_scope(scope, job.site_ids)
        ],
    }


@router.get(
    "/v1/exports/{export_id}",
    summary="An export job: status, progress, and its files with download links",
    dependencies=[allowed(Action.EXPORT)],
    responses={403: {}, 404: {}},
)
async def get_export(
    runtime: CurrentRuntime, export_id: uuid.UUID, by: CurrentPrincipal
) -> dict[str, Any]:
    job = await _visible_job(runtime, by, export_id)
    return present(job, await repo.parts(runtime.pool, export_id))


@router.get(
    "/v1/exports/{export_id}/files/{name}",
    summary="Download one file of an export (streamed)",
    dependencies=[allowed(Action.EXPORT)],
    response_class=FileResponse,
    responses={403: {}, 404: {}, 410: {}},
)
async def download_export_file(
    runtime: CurrentRuntime,
    settings: Settings,
    export_id: uuid.UUID,
    name: str,
    by: CurrentPrincipal,
) -> FileResponse:
    job = await _visible_job(runtime, by, export_id)
    if job.expired_at is not None:
        raise Refused(
            Kind.GONE,
            "export_expired",
            f"export '{export_id}' expired on {job.expired_at.date().isoformat()} and its files "
            "were deleted ("
            + (job.expired_reason or f"exports are kept {settings.export_keep_days:g} days")
            + "): start a new export with POST /v1/exports",
        )
    # the name is looked up among the job's finished parts, never used as a path as given
    part = next((p for p in await repo.parts(runtime.pool, export_id) if p.file_name == name), None)
    if part is None or part.rows_written is None:
        raise Refused(Kind.NOT_FOUND, "unknown_file", f"export '{export_id}' has no file '{name}'")
    path = job_dir(settings.export_dir, export_id) / part.file_name
    if not path.is_file():  # removed from the volume since (or a replica without the volume)
        raise Refused(
            Kind.NOT_FOUND, "file_gone", f"'{name}' of export '{export_id}' is no longer stored"
        )
    async with runtime.pool.acquire() as conn, conn.transaction():
        await audit.record(
            conn,
            **audited_as(by, job.study_id),
            action="export.downloaded",
            entity="export",
            entity_id=str(export_id),
            new={"file": part.file_name, "rows": part.rows_written, "sha256": part.sha256},
        )
    return FileResponse(
        path,
        media_type=job.format.media_type,
        filename=part.file_name,
    )

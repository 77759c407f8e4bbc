"""Risk-based monitoring routes: a site's and a participant's KRIs, discrepancy flags and
closing them."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StringConstraints
from trialstream.errors import Kind, Refused
from trialstream.identity import DEFAULT_STUDY, Action
from trialstream.staff import allowed

from monitoring import repository as monitoring_repository
from monitoring.context import Ctx, CurrentStaff
from monitoring.domain import may_read, site_to_read
from monitoring.rbm import kri_evaluation, repository
from monitoring.rbm.closing import close_flag
from monitoring.rbm.study_limits import config_for

router = APIRouter(tags=["risk-based monitoring"])


class FlagClosing(BaseModel):
    note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ] = Field(description="Why the flag is closed (required)")


@router.get(
    "/v1/sites/{site_id}/kris",
    summary="A site's KRIs and its participants' KRIs",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def site_kris(ctx: Ctx, site_id: str, staff: CurrentStaff) -> dict[str, Any]:
    site_to_read(staff, site_id)
    # Each KRI's threshold is the study's (`source: study`) or the settings' (`settings`:
    # the default study, a KRI its file does not name, or a study not read here yet).
    study = staff.study_id
    cfg = config_for(ctx.kri_config, ctx.runtime.studies.get(study))
    return await kri_evaluation.site_kris(ctx.pool, cfg, site_id, study)


@router.get(
    "/v1/participants/{participant_id}/kris",
    summary="One participant's KRIs",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def participant_kris(ctx: Ctx, participant_id: str, staff: CurrentStaff) -> dict[str, Any]:
    site = await repository.site_of(ctx.pool, participant_id)  # RBM's own participants
    where = await monitoring_repository.where_is(ctx.pool, participant_id)
    study = None if where is None else where[0]
    found = None
    if site is not None and may_read(staff.in_study(study), site):
        thresholds = config_for(ctx.kri_config, ctx.runtime.studies.get(study or DEFAULT_STUDY))
        found = await kri_evaluation.participant_kris(ctx.pool, thresholds, participant_id)
    if found is None:
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"no participant {participant_id} in your sites"
        )
    return found


@router.get(
    "/v1/flags",
    summary="Discrepancy flags of a site, newest first",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
)
async def list_flags(
    ctx: Ctx,
    staff: CurrentStaff,
    site: str | None = None,
    status: Literal["open", "closed", "all"] = "open",
    participant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    scope = site_to_read(staff, site)
    found = await repository.list_flags(
        ctx.pool, scope, None if status == "all" else status, participant, limit, staff.study_id
    )
    return {"site": scope, "status": status, "flags": found}


@router.post(
    "/v1/flags/{flag_id}/close",
    dependencies=[allowed(Action.CLOSE_FLAGS)],
    summary="Close a flag with a signed note (site staff, investigator, data manager)",
)
async def close(ctx: Ctx, flag_id: UUID, body: FlagClosing, staff: CurrentStaff) -> dict[str, Any]:
    return await close_flag(
        ctx.pool, staff, flag_id, body.note, step_up_seconds=ctx.settings.step_up_seconds
    )

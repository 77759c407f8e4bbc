"""A study's aggregates, the one view a sponsor has: per site, how many participants are
enrolled and withdrawn, how many alerts are open or handled by severity, and the site's
KRIs. Counts only: no participant id, no reading, no free text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from trialstream.errors import Kind, Refused
from trialstream.events.base import StudyId
from trialstream.identity import Action
from trialstream.staff import CurrentPrincipal, allowed
from trialstream.studies import Module

from monitoring.context import Ctx
from monitoring.rbm import kri_evaluation
from monitoring.rbm.kri import present
from monitoring.rbm.study_limits import config_for

router = APIRouter(tags=["studies"])

_PARTICIPANTS = """
SELECT p.site_id,
       count(*) AS enrolled,
       count(*) FILTER (WHERE r.withdrawn_at IS NOT NULL) AS withdrawn
FROM participants p LEFT JOIN rbm_participants r USING (participant_id)
WHERE p.study_id = $1 AND ($2::text[] IS NULL OR p.site_id = ANY($2))
GROUP BY p.site_id
"""
_ALERTS = """
SELECT p.site_id, a.severity, a.status, count(*) AS n
FROM alerts a JOIN participants p USING (participant_id)
WHERE p.study_id = $1 AND ($2::text[] IS NULL OR p.site_id = ANY($2))
GROUP BY p.site_id, a.severity, a.status
"""


@router.get(
    "/v1/studies/{study_id}/summary",
    summary="A study's aggregates per site (every role of the study, sponsors included)",
    dependencies=[allowed(Action.READ_AGGREGATES)],
)
async def study_summary(ctx: Ctx, study_id: StudyId, principal: CurrentPrincipal) -> dict[str, Any]:
    """Per site the caller may see (a site role: their sites; a study-wide role: every
    site): participants enrolled and withdrawn, alerts by severity and status, and the
    site's KRIs against the study's tolerance limits."""
    if not principal.allows(Action.READ_AGGREGATES, study_id):
        # a study without a role of yours is not there for you (its id tells nothing)
        raise Refused(Kind.NOT_FOUND, "unknown_study", f"You have no role in study '{study_id}'.")
    studies = ctx.runtime.studies
    if studies.known(study_id) and not studies.enables(study_id, Module.MONITORING):
        raise Refused(
            Kind.CONFLICT, "module_not_enabled", f"Study '{study_id}' does not use monitoring."
        )
    scope = principal.sites(study_id)
    sites = None if scope is None else sorted(scope)
    out: dict[str, dict[str, Any]] = {}

    def site(site_id: str) -> dict[str, Any]:
        return out.setdefault(
            site_id, {"site_id": site_id, "enrolled": 0, "withdrawn": 0, "alerts": {}, "kris": []}
        )

    async with ctx.pool.acquire() as conn:
        for row in await conn.fetch(_PARTICIPANTS, study_id, sites):
            site(row["site_id"]).update(enrolled=row["enrolled"], withdrawn=row["withdrawn"])
        for row in await conn.fetch(_ALERTS, study_id, sites):
            by_severity = site(row["site_id"])["alerts"].setdefault(row["severity"], {})
            by_severity[row["status"]] = row["n"]
    cfg = config_for(ctx.kri_config, studies.get(study_id))
    kris = await kri_evaluation.study_site_kris(ctx.pool, cfg, study_id, datetime.now(UTC))
    for site_id, values in kris.items():
        if sites is None or site_id in sites:
            site(site_id)["kris"] = present(values, cfg)
    return {"study_id": study_id, "sites": [out[s] for s in sorted(out)]}

"""The portfolio page for CRO operations and sponsors (issue 19): server-rendered (Jinja2),
the staff dashboard's look and local assets, no script.

A browser is known by the staff session cookie the dashboard's login sets (decision
0040; cookies are per host, so the one from `/dashboard/login` opens this page too), a
script by `Authorization: Bearer`. The figures are the ones `GET /v1/portfolio` answers,
built by the same service call under the same access checks: a study without a role of
the caller's is not there, a site role sees its sites. Counts only: no participant or
candidate id is rendered.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from trialstream.errors import Refused
from trialstream.events.base import SiteId, StudyId
from trialstream.identity import Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import current_principal, staff_access

from intelligence import early_warning, repository, service
from intelligence.api import Settings, _today

_PACKAGE = Path(str(files("intelligence")))
TEMPLATES = Jinja2Templates(directory=_PACKAGE / "templates")
STATIC_PATH = "/portfolio/static"
router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    # the staff pages' shared stylesheet (staff.css) comes from the trialstream package
    return StaticFiles(directory=_PACKAGE / "static", packages=[("trialstream", "static")])


def chart(sites: list[dict[str, Any]]) -> dict[str, Any]:
    """Per site, x positions (of 470 px from x=150) of the expected band, its median and
    the enrolled count, on one scale from 0 to the largest figure."""
    sites = [s for s in sites if s["expected_to_date"] is not None]  # alone: no comparison
    top = int(max([1] + [max(s["enrolled"], s["expected_to_date"]["upper"]) for s in sites]))

    def x(n: float) -> float:
        return round(150 + 450 * n / top, 1)

    rows = [
        {
            "site_id": s["site_id"],
            "enrolled": s["enrolled"],
            "light": s["below_forecast"],
            "lower_x": x(s["expected_to_date"]["lower"]),
            "band_w": round(
                max(x(s["expected_to_date"]["upper"]) - x(s["expected_to_date"]["lower"]), 1.0),
                1,
            ),
            "median_x": x(s["expected_to_date"]["median"]),
            "enrolled_x": x(s["enrolled"]),
        }
        for s in sites
    ]
    return {"top": top, "rows": rows}


async def _principal(request: Request) -> Principal | None:
    try:
        return await current_principal(request, staff_access(request))
    except Refused:
        return None


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


@router.get("/portfolio")
async def portfolio_page(
    runtime: CurrentRuntime, settings: Settings, request: Request
) -> HTMLResponse:
    by = await _principal(request)
    if by is None:
        return _page(request, "signed_out.html", {"message": "No session."}, 401)
    if not by.allows_in_some_study(Action.READ_AGGREGATES):
        message = "Your roles do not read a study's aggregates."
        return _page(request, "not_found.html", {"principal": by, "message": message}, 403)
    level = settings.forecast_level
    studies = await service.portfolio(
        runtime.pool, runtime.studies, by, _today(), level, settings.forecast_draws,
        settings.limits(),
    )  # fmt: skip
    for s in studies:
        s["chart"] = chart(s["sites"])
    context = {"principal": by, "studies": studies, "level": level, "as_of": _today().date()}
    return _page(request, "portfolio.html", context)


@router.get("/portfolio/{study_id}/sites/{site_id}")
async def site_page(
    runtime: CurrentRuntime,
    settings: Settings,
    request: Request,
    study_id: StudyId,
    site_id: SiteId,
) -> HTMLResponse:
    by = await _principal(request)
    if by is None:
        return _page(request, "signed_out.html", {"message": "No session."}, 401)
    study = runtime.studies.get(study_id)
    scope = by.sites(study_id)
    if (
        study is None
        or study.enrollment is None
        or not by.allows(Action.READ_AGGREGATES, study_id)
        or (scope is not None and site_id not in scope)
    ):
        message = f"No study '{study_id}' with a site '{site_id}' of yours has a forecast."
        return _page(request, "not_found.html", {"principal": by, "message": message}, 404)
    level = settings.forecast_level
    made = await service.study_forecast(
        runtime.pool, study, _today(), level, settings.forecast_draws
    )
    await early_warning.light(runtime.pool, [made], _today(), settings.limits())
    site = next((s for s in made["sites"] if s["site_id"] == site_id), None)
    if site is None:
        message = f"Site '{site_id}' of study '{study_id}' is not open yet."
        return _page(request, "not_found.html", {"principal": by, "message": message}, 404)
    found = await repository.aggregates(runtime.pool, study_id, [site_id])
    counts: dict[str, dict[str, int]] = {"decisions": {}, "status": {}}
    for r in found["by_site"]:
        for part, key in (("decisions", r["decision"]), ("status", r["status"])):
            counts[part][key] = counts[part].get(key, 0) + r["n"]
    context = {
        "principal": by,
        "study": study,
        "site": site,
        "chart": chart([site]),
        "level": level,
        "prescreening": counts if found["by_site"] else None,
    }
    return _page(request, "site.html", context)

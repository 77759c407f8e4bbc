"""HTTP routes: candidate uploads and referrals (site staff and admins, at the site), the
ranked list (roles that read participant data, at the site), aggregates and forecasts
(every role of the study, sponsors included), the risk model's report."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool
from trialstream.errors import Kind, Refused
from trialstream.events.base import ParticipantId, SiteId, StudyId
from trialstream.identity import Action, Principal
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, allowed, check_allowed, study_for
from trialstream.studies import StudyDefinition

from intelligence import repository, service
from intelligence.domain.risk import RiskModel
from intelligence.settings import IntelligenceSettings

READ, MANAGE, AGGREGATES = (
    Action.READ_PARTICIPANT_DATA,
    Action.MANAGE_PARTICIPANTS,
    Action.READ_AGGREGATES,
)
Decision = Literal["eligible", "needs_review", "ineligible"]
router = APIRouter()


def _settings(runtime: CurrentRuntime) -> IntelligenceSettings:
    assert isinstance(runtime.settings, IntelligenceSettings)
    return runtime.settings


def _model(request: Request) -> RiskModel:
    model: RiskModel = request.app.state.model
    return model


Settings = Annotated[IntelligenceSettings, Depends(_settings)]
Model = Annotated[RiskModel, Depends(_model)]


def _study(by: Principal, study_id: str, action: Action) -> None:
    if not by.allows(action, study_id):
        # a study without a role of yours is not there for you (its id tells nothing)
        raise Refused(Kind.NOT_FOUND, "unknown_study", f"You have no role in study '{study_id}'.")


def _today() -> datetime:
    return datetime.now(UTC)


@router.post("/v1/candidates", tags=["pre-screening"])
async def upload_candidate(
    request: Request,
    runtime: CurrentRuntime,
    model: Model,
    by: Annotated[Principal, allowed(MANAGE)],
    site: SiteId,
) -> dict[str, Any]:
    """One candidate as a FHIR R4 Bundle (JSON), from the records or a pre-screening
    questionnaire of `site`: evaluated against every study with criteria at the site.
    Identifying fields are dropped here (docs/services/intelligence.md)."""
    try:
        document = json.loads(await request.body())
    except ValueError:
        raise Refused(Kind.INVALID, "malformed_json", "The request body is not JSON.") from None
    if not isinstance(document, dict):
        raise Refused(Kind.INVALID, "invalid_bundle", "Send one FHIR Bundle (a JSON object).")
    bundles = service.parse_bundles([document], "body")
    answer = await service.screen(
        runtime.pool, runtime.studies, model, site, bundles, by, _today().date()
    )
    answer.pop("counts")
    return answer


@router.post("/v1/candidates/batch", tags=["pre-screening"])
async def upload_candidates(
    request: Request,
    runtime: CurrentRuntime,
    settings: Settings,
    model: Model,
    by: Annotated[Principal, allowed(MANAGE)],
    site: SiteId,
) -> dict[str, Any]:
    """Many candidates: NDJSON, one FHIR Bundle per line. All or nothing: a bad line is
    named (`lines[i]...`) and nothing is stored."""
    lines = [line for line in (await request.body()).splitlines() if line.strip()]
    if not lines:
        raise Refused(Kind.INVALID, "empty_upload", "Send one FHIR Bundle per line.")
    if len(lines) > settings.max_bundles_per_upload:
        raise Refused(
            Kind.TOO_LARGE,
            "too_many_bundles",
            f"At most {settings.max_bundles_per_upload} bundles per upload.",
        )
    bundles = await run_in_threadpool(service.parse_bundles, lines, "lines")
    answer = await service.screen(
        runtime.pool, runtime.studies, model, site, bundles, by, _today().date(), explain=False
    )
    answer.pop("decisions")
    answer["decisions"] = answer.pop("counts")
    return answer


@router.get("/v1/studies/{study_id}/sites/{site_id}/candidates", tags=["pre-screening"])
async def ranked_candidates(
    runtime: CurrentRuntime,
    study_id: StudyId,
    site_id: SiteId,
    by: Annotated[Principal, allowed(READ)],
    decision: Annotated[list[Decision] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The site's candidates for the study, eligible first, then needs review; each by
    screen-failure risk (lowest first), with the outcome of every criterion."""
    _study(by, study_id, READ)
    check_allowed(by, READ, site_id, study_id)
    wanted = decision or ["eligible", "needs_review"]
    rows = await service.ranked(runtime.pool, study_id, site_id, wanted, limit)
    return {"study_id": study_id, "site_id": site_id, "candidates": rows}


class Screening(BaseModel):
    outcome: Literal["screened", "screen_failed"]
    reason: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Why screening failed (required then); no names or contacts"
    )

    @model_validator(mode="after")
    def _failure_has_reason(self) -> Screening:
        if self.outcome == "screen_failed" and self.reason is None:
            raise ValueError("a screen failure needs its reason")
        return self


@router.post("/v1/studies/{study_id}/candidates/{candidate_id}/referral", tags=["pre-screening"])
async def refer(
    runtime: CurrentRuntime,
    study_id: StudyId,
    candidate_id: ParticipantId,
    by: Annotated[Principal, allowed(MANAGE)],
) -> dict[str, Any]:
    """Refer the candidate to the study's screening visit. Enrolment then goes the usual
    way (ingest's POST /v1/admin/participants, with the candidate's pseudonym as the
    participant id); this service sees it on the participants topic."""
    return await service.move(runtime.pool, study_id, candidate_id, "referred", None, by)


@router.post("/v1/studies/{study_id}/candidates/{candidate_id}/screening", tags=["pre-screening"])
async def screening_outcome(
    runtime: CurrentRuntime,
    study_id: StudyId,
    candidate_id: ParticipantId,
    body: Screening,
    by: Annotated[Principal, allowed(MANAGE)],
) -> dict[str, Any]:
    return await service.move(runtime.pool, study_id, candidate_id, body.outcome, body.reason, by)


@router.get("/v1/candidates/{candidate_id}/verification", tags=["pre-screening"])
async def verify(
    runtime: CurrentRuntime,
    candidate_id: ParticipantId,
    by: Annotated[Principal, allowed(READ)],
) -> dict[str, Any]:
    """Every stored decision re-made from the stored record and its criteria version."""
    return await service.verify(runtime.pool, candidate_id, by)


@router.get("/v1/studies/{study_id}/prescreening", tags=["aggregates"])
async def prescreening_summary(
    runtime: CurrentRuntime, study_id: StudyId, by: Annotated[Principal, allowed(AGGREGATES)]
) -> dict[str, Any]:
    """Counts only (no candidate): decisions and conversion per site the caller sees,
    the criteria candidates fail or lack data for, screen-failure reasons."""
    _study(by, study_id, AGGREGATES)
    scope = by.sites(study_id)
    found = await repository.aggregates(
        runtime.pool, study_id, None if scope is None else sorted(scope)
    )
    sites: dict[str, dict[str, Any]] = {}
    for r in found["by_site"]:
        site = sites.setdefault(
            r["site_id"], {"site_id": r["site_id"], "decisions": {}, "status": {}}
        )
        for part, key in (("decisions", r["decision"]), ("status", r["status"])):
            site[part][key] = site[part].get(key, 0) + r["n"]
    return {
        "study_id": study_id,
        "sites": sorted(sites.values(), key=lambda s: s["site_id"]),
        "criteria": [dict(r) for r in found["criteria"]],
        "screen_failure_reasons": [dict(r) for r in found["reasons"]],
    }


def _plan(runtime: CurrentRuntime, by: Principal, study_id: str) -> StudyDefinition:
    _study(by, study_id, AGGREGATES)
    study = runtime.studies.get(study_id)
    if study is None:
        raise Refused(Kind.NOT_FOUND, "unknown_study", f"No study '{study_id}' is announced.")
    return study


Level = Annotated[float | None, Query(gt=0.5, lt=1, description="interval, e.g. 0.9")]


@router.get("/v1/studies/{study_id}/forecast", tags=["forecasts"])
async def forecast(
    runtime: CurrentRuntime,
    settings: Settings,
    study_id: StudyId,
    by: Annotated[Principal, allowed(AGGREGATES)],
    level: Level = None,
) -> dict[str, Any]:
    """When the study, and each site with its own target, reaches its enrollment target:
    the Poisson-gamma model fitted to the sites' enrolments so far, with its interval. A
    role limited to some sites sees the study's figures and its own sites only."""
    return await _forecast_for(runtime, settings, by, study_id, level)


@router.get("/v1/studies/{study_id}/forecast.csv", tags=["forecasts"])
async def forecast_csv(
    runtime: CurrentRuntime,
    settings: Settings,
    study_id: StudyId,
    by: Annotated[Principal, allowed(AGGREGATES)],
    level: Level = None,
) -> Response:
    mine = await _forecast_for(runtime, settings, by, study_id, level)
    return _csv(service.CSV_COLUMNS, service.forecast_rows(mine), f"{study_id}-forecast")


async def _forecast_for(
    runtime: CurrentRuntime,
    settings: IntelligenceSettings,
    by: Principal,
    study_id: str,
    level: float | None,
) -> dict[str, Any]:
    """The study's forecast as the caller sees it: the study's figures, their sites only."""
    study = _plan(runtime, by, study_id)
    result = await service.study_forecast(
        runtime.pool, study, _today(), level or settings.forecast_level, settings.forecast_draws
    )
    return service.within(result, by.sites(study_id))


@router.get("/v1/portfolio", tags=["forecasts"])
async def portfolio(
    runtime: CurrentRuntime,
    settings: Settings,
    by: Annotated[Principal, allowed(AGGREGATES)],
    level: Level = None,
    study: Annotated[StudyId | None, Query(description="one study of yours")] = None,
    site: Annotated[SiteId | None, Query(description="one site of yours (with study)")] = None,
) -> dict[str, Any]:
    """Every study of yours with an enrollment target, at the sites you see: enrolled,
    forecast with its interval, and the early-warning KRIs per site (below forecast; data
    completeness, alert load, time to acknowledge and retention risk from monitoring's
    and retention's latest snapshots, 'unknown' when none arrived or it is stale)."""
    studies = await _portfolio(runtime, settings, by, level, study, site)
    return {"as_of": _today().isoformat(), "studies": studies}


@router.get("/v1/portfolio.csv", tags=["forecasts"])
async def portfolio_csv(
    runtime: CurrentRuntime,
    settings: Settings,
    by: Annotated[Principal, allowed(AGGREGATES)],
    level: Level = None,
    study: Annotated[StudyId | None, Query(description="one study of yours")] = None,
    site: Annotated[SiteId | None, Query(description="one site of yours (with study)")] = None,
) -> Response:
    studies = await _portfolio(runtime, settings, by, level, study, site)
    return _csv(service.PORTFOLIO_COLUMNS, service.portfolio_rows(studies), "portfolio")


async def _portfolio(
    runtime: CurrentRuntime,
    settings: IntelligenceSettings,
    by: Principal,
    level: float | None,
    study: str | None,
    site: str | None,
) -> list[dict[str, Any]]:
    """The caller's studies, or the one named (404 if not theirs), at the site named (403
    `forbidden_site` if not theirs; a site is of one study: the one named, else the
    caller's only study)."""
    if site is not None:
        study = study_for(by, study)
    if study is not None:
        _study(by, study, AGGREGATES)
    if site is not None and study is not None:
        check_allowed(by, AGGREGATES, site, study)
    found = await service.portfolio(
        runtime.pool, runtime.studies, by, _today(), level or settings.forecast_level,
        settings.forecast_draws, settings.limits(), only=study,
    )  # fmt: skip
    if site is None:
        return found
    return [service.within(s, frozenset({site})) for s in found]


def _csv(columns: tuple[str, ...], rows: list[list[Any]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/v1/screening-model", tags=["pre-screening"])
async def screening_model(model: Model, _: CurrentPrincipal) -> dict[str, Any]:
    """The screen-failure model in force: trained on a simulated cohort; held-out AUC
    and calibration next to the rules-only baseline."""

    def calibration(c: Any) -> dict[str, Any]:
        return {
            "brier": round(c.brier, 4),
            "expected_calibration_error": round(c.expected_calibration_error, 4),
            "bins": [{"predicted": p, "observed": o, "n": n} for p, o, n in c.bins],
        }

    return {
        "version": model.version,
        "auc": round(model.auc, 4),
        "calibration": calibration(model.calibration),
        "rules_only_baseline": {
            "auc": round(model.baseline_auc, 4),
            "calibration": calibration(model.baseline_calibration),
        },
    }

"""Anomaly's routes: what scoring is in force, for operators and auditors (which rules,
limits, persistence and model version every alert of this process carries, in general or
for one study's participants); and one participant's night summary, the brief SpO2 dips
counted per day instead of paged (anomaly.dips)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from trialstream.errors import Kind, Refused
from trialstream.events.base import StudyId
from trialstream.events.readings import Metric
from trialstream.identity import Action
from trialstream.runtime import CurrentRuntime
from trialstream.staff import CurrentPrincipal, allowed
from trialstream.studies import ScoringProfile, StudyNotKnownYet

from anomaly import dips, repository
from anomaly.config import Direction, Persistence, ScoringConfig
from anomaly.explain import number
from anomaly.forest import shipped
from anomaly.state import ParticipantState, StateError
from anomaly.studies import StudyScoring

router = APIRouter(tags=["scoring"])


def scoring_config(request: Request) -> StudyScoring:
    """The configurations this process scores with (app.state.scoring)."""
    scoring: StudyScoring = request.app.state.scoring
    return scoring


class Band(BaseModel):
    threshold: float
    band: int = Field(description="NEWS2-style band: 3 high, 2 medium, 1 low severity")


class LimitOut(BaseModel):
    rule: str
    metric: str
    direction: str
    bands: list[Band] = Field(description="Most severe first")
    suppressed_by_activity: bool
    personal_margin: float | None


class PersistenceOut(BaseModel):
    min_readings: int
    min_minutes: float
    max_gap_minutes: float
    recovery_readings: int

    @classmethod
    def of(cls, p: Persistence) -> PersistenceOut:
        return cls(
            min_readings=p.min_readings,
            min_minutes=p.min_minutes,
            max_gap_minutes=p.max_gap_minutes,
            recovery_readings=p.recovery_readings,
        )


class ModelOut(BaseModel):
    version: str
    threshold: float
    features: list[str]
    persistence: PersistenceOut


class Scoring(BaseModel):
    profile: ScoringProfile = Field(
        description="The scoring profile: the study file's scoring_profile, or the platform's"
    )
    model_version: str = Field(
        description="What every rule alert carries: the profile and its rules, e.g. "
        "device-mix/rules-3.4 (+<study> when the study moves a limit)"
    )
    limits: list[LimitOut]
    persistence: dict[str, PersistenceOut] = Field(description="Per metric")
    device_quality: bool
    dropout_minutes: float
    personal_baselines: bool
    irregular_rhythm: bool
    multivariate: ModelOut | None = Field(description="None when the model is switched off")


@router.get(
    "/v1/scoring",
    dependencies=[allowed(Action.READ_AGGREGATES)],
    summary="The scoring in force (any signed-in staff member)",
)
async def scoring(
    scoring: Annotated[StudyScoring, Depends(scoring_config)],
    study: Annotated[
        StudyId | None,
        Query(
            description="A study: its participants' profile and limits (the study file's "
            "scoring_profile and alert_limits)"
        ),
    ] = None,
) -> Scoring:
    config = scoring.base if study is None else _of_study(scoring, study)
    model = None
    if config.multivariate:
        forest = shipped()
        model = ModelOut(
            version=forest.version,
            threshold=config.model_threshold or forest.threshold,
            features=list(forest.features),
            persistence=PersistenceOut.of(config.model_persistence),
        )
    return Scoring(
        profile=config.profile,
        model_version=config.model_version,
        limits=[
            LimitOut(
                rule=lim.rule,
                metric=str(lim.metric),
                direction=str(lim.direction),
                bands=[Band(threshold=t, band=b) for t, b in lim.bands],
                suppressed_by_activity=lim.suppressed_by_activity,
                personal_margin=lim.personal_margin,
            )
            for lim in config.limits
        ],
        persistence={str(m): PersistenceOut.of(p) for m, p in config.persistence.items()},
        device_quality=config.device_quality,
        dropout_minutes=config.dropout_minutes,
        personal_baselines=config.personal_baselines,
        irregular_rhythm=config.irregular_rhythm,
        multivariate=model,
    )


def _of_study(scoring: StudyScoring, study: str) -> ScoringConfig:
    try:
        config = scoring.config_for(study)
    except StudyNotKnownYet:
        if not scoring.studies.caught_up:
            raise Refused(
                Kind.UNAVAILABLE, "studies_loading", "The studies are still being read."
            ) from None
        raise Refused(Kind.NOT_FOUND, "unknown_study", f"No study '{study}' is known.") from None
    if config is None:
        raise Refused(
            Kind.CONFLICT, "module_not_enabled", f"Study '{study}' does not use anomaly scoring."
        )
    return config


class DipDay(BaseModel):
    day: date = Field(description="UTC date of the dips")
    dips: int = Field(description="Brief SpO2 dips at or below the limit that started that day")


class NightSummary(BaseModel):
    participant_id: str
    study_id: str
    days: list[DipDay] = Field(description=f"Oldest first, the last {dips.KEPT_DAYS} days")
    explanation: str


@router.get(
    "/v1/participants/{participant_id}/night-summary",
    dependencies=[allowed(Action.READ_PARTICIPANT_DATA)],
    summary="Brief SpO2 dips (sleep-apnea-like) per day: counted, not paged",
)
async def night_summary(
    runtime: CurrentRuntime,
    staff: CurrentPrincipal,
    scoring: Annotated[StudyScoring, Depends(scoring_config)],
    participant_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> NightSummary:
    """Anomaly knows a participant's study (from their readings) but not their site, so the
    summary is for roles that cover the whole study; site staff are refused rather than
    shown participants of other sites. A participant of a study the caller has no role in
    is not found, as one never scored."""
    data = await repository.state_of(runtime.pool, participant_id)
    try:
        state = None if data is None else ParticipantState.from_json(data)
    except StateError:
        state = None
    study = None if state is None else state.study_id
    if state is None or study is None or not staff.allows(Action.READ_PARTICIPANT_DATA, study):
        raise Refused(
            Kind.NOT_FOUND, "unknown_participant", f"No scored participant '{participant_id}'."
        )
    if staff.sites(study) is not None:
        raise Refused(
            Kind.FORBIDDEN,
            "study_wide_role_needed",
            "The night summary needs a role that covers the whole study: anomaly scoring "
            "does not know participants' sites.",
        )
    days = dips.daily(state.dips)
    total = sum(n for _, n in days)
    limit = _spo2_limit(scoring, study)
    return NightSummary(
        participant_id=participant_id,
        study_id=study,
        days=[DipDay(day=d, dips=n) for d, n in days],
        explanation=(
            f"{total} brief oxygen-saturation dips to {limit} or below on {len(days)} of the "
            f"last {dips.KEPT_DAYS} days (UTC dates). Brief dips, often many a night, look like "
            "sleep apnea: they are counted here, not alerted. A desaturation that holds is "
            "alerted on its own; a high or rising count is worth raising with the "
            "participant's doctor (a sleep study)."
        ),
    )


def _spo2_limit(scoring: StudyScoring, study: str) -> str:
    """The study's desaturation limit as the summary states it, e.g. '91 %'."""
    try:
        config = scoring.config_for(study) or scoring.base
    except StudyNotKnownYet:
        config = scoring.base
    found = [
        lim.threshold_for(min(lim.levels))
        for lim in config.limits
        if lim.metric is Metric.OXYGEN_SATURATION and lim.direction is Direction.LOW
    ]
    return f"{number(found[0])} %" if found else "the limit"

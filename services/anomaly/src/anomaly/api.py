"""Anomaly's one route of its own: what scoring is in force, for operators and auditors
(which rules, limits, persistence and model version every alert of this process carries,
in general or for one study's participants)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from trialstream.errors import Kind, Refused
from trialstream.events.base import StudyId
from trialstream.identity import Action
from trialstream.staff import allowed
from trialstream.studies import StudyNotKnownYet

from anomaly.config import Persistence, ScoringConfig
from anomaly.forest import shipped
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
    model_version: str = Field(description="What every rule alert carries, e.g. rules-2.0")
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
        Query(description="A study: its participants' limits (the study file's alert_limits)"),
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

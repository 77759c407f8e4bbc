"""Anomaly's one route of its own: what scoring is in force, for operators and auditors
(which rules, limits, persistence and model version every alert of this process carries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from trialstream.identity import Action
from trialstream.staff import allowed

from anomaly.config import Persistence, ScoringConfig
from anomaly.forest import shipped

router = APIRouter(tags=["scoring"])


def scoring_config(request: Request) -> ScoringConfig:
    """The configuration this process scores with (app.state.config)."""
    config: ScoringConfig = request.app.state.config
    return config


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
async def scoring(config: Annotated[ScoringConfig, Depends(scoring_config)]) -> Scoring:
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

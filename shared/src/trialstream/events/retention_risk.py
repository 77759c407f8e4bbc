"""Retention: each site's dropout risk, summarised from the dropout model's latest scores.

Aggregates only: no participant id and no one's score or features leave the retention
service. The event holds no personal data, so an erasure request leaves it as it is."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from trialstream.events.base import Event, SiteId, StudyId


class RetentionRiskSummary(Event):
    """A site's dropout risk after a periodic scoring: one per (study, site) and scoring,
    keyed '<study_id>|<site_id>' on a compacted topic (the latest is the state; decision
    0090). Withdrawn participants are not scored, so they are not counted."""

    schema_version: Literal[1] = 1
    study_id: StudyId
    site_id: SiteId
    scored_at: AwareDatetime
    model_version: str
    participants_scored: int = Field(ge=1)
    high_risk: int = Field(ge=0, description="Participants scored at or above the cut-off")
    high_risk_cutoff: float = Field(gt=0, lt=1, description="Dropout probability")
    high_risk_share: float = Field(ge=0, le=1)
    mean_risk: float = Field(ge=0, le=1)

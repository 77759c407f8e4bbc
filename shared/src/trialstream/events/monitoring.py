"""Risk-based monitoring: key risk indicators crossing their limits, and discrepancy flags.

Neither event carries free text written by staff or participants: reasons are sentences
built by monitoring from the values in `evidence`, with pseudonymous ids only."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trialstream.events.base import DEFAULT_STUDY, Event, ParticipantId, SiteId, StudyId


class KriThreshold(BaseModel):
    """Quality tolerance limits: amber and red, and which way is worse."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    amber: float
    red: float
    direction: Literal["above", "below"]


class _KriChange(Event):
    schema_version: Literal[1] = 1
    # the study whose site (or participant) it is: two studies may share a site id (added
    # within version 1; older records: the default study)
    study_id: StudyId = DEFAULT_STUDY
    scope: Literal["site", "participant"]
    site_id: SiteId
    participant_id: ParticipantId | None = Field(
        default=None, description="Set when scope is participant"
    )
    kri: str = Field(description="Machine name, e.g. 'wear_time'")
    label: str
    value: float | None
    unit: str
    threshold: KriThreshold
    status: Literal["green", "amber", "red", "unknown"]
    breached_at: AwareDatetime = Field(description="When this breach episode started (red)")


class KriBreached(_KriChange):
    """A KRI went red: one event per breach episode (the episode lasts until it is green)."""


class KriRecovered(_KriChange):
    """A KRI that had breached is green again: its breach episode is over."""

    recovered_at: AwareDatetime


class DiscrepancyFlagRaised(Event):
    """A data discrepancy found automatically, raised once per episode (its dedupe key)."""

    schema_version: Literal[1] = 1
    flag_id: UUID
    participant_id: ParticipantId
    site_id: SiteId | None = None
    kind: str = Field(description="e.g. 'device-clock-skew', 'shared-device'")
    reason: str
    evidence: dict[str, Any] = Field(description="The values behind the flag")
    raised_at: AwareDatetime


class KriReading(BaseModel):
    """One KRI of a site as the last evaluation judged it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kri: str = Field(description="Machine name, e.g. 'wear_time'")
    label: str
    value: float | None = Field(description="None: too little data to judge")
    unit: str
    threshold: KriThreshold
    status: Literal["green", "amber", "red", "unknown"]


class SiteKriSnapshot(Event):
    """A site's key risk indicators after a periodic evaluation, with its open work: one
    per (study, site) and evaluation, keyed '<study_id>|<site_id>' on a compacted topic
    (the latest is the state; decision 0090).

    Aggregates only: no participant id, no value of one participant, no free text. It
    holds no personal data, so an erasure request leaves it as it is."""

    schema_version: Literal[1] = 1
    study_id: StudyId
    site_id: SiteId
    evaluated_at: AwareDatetime
    window_days: int = Field(ge=1, description="The trailing window the KRIs look at")
    participants: int = Field(ge=0, description="Participants pooled into the values")
    kris: tuple[KriReading, ...]
    open_alerts: int = Field(ge=0, description="Alerts nobody acknowledged yet")
    open_flags: int = Field(ge=0, description="Discrepancy flags not closed yet")
    alerts_in_window: int = Field(ge=0, description="Alerts received in the window")
    participant_days: float = Field(ge=0, description="Days in the study within the window")

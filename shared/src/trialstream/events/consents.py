"""What a participant has consented to, as the consent service announces it (issue 18,
decision 0079).

The consents topic is compacted and keyed by participant_id: the latest `ConsentState`
per participant is their consent. Each record carries the whole state (every scope the
participant ever consented to, since when, and until when if they withdrew it), with a
`revision` that grows per participant, so a consumer keeps the highest revision and
needs nothing else (no ordering across topics, no history). No names, no document text:
the version and SHA-256 of the document signed identify what was agreed to.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trialstream.events.base import DEFAULT_STUDY, Event, ParticipantId, SiteId, StudyId


class ConsentScope(StrEnum):
    """What a participant may consent to, each on its own (a study offers some of them in
    its consent document). The services that collect data check theirs."""

    WEARABLE = "wearable"  # ingest: wearable readings
    EPRO = "epro"  # ePRO answers
    TELEHEALTH = "telehealth"  # telehealth video visits
    FUTURE_RESEARCH = "future-research"  # secondary use (no service gates it yet)
    GENETIC = "genetic"  # genetic data (no service collects it yet)


class ScopeConsent(BaseModel):
    """One scope: in force from `since` (the signature's server time) until `until` (a
    partial or full withdrawal), if set."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    scope: ConsentScope
    since: AwareDatetime
    until: AwareDatetime | None = None

    def covers(self, at: datetime) -> bool:
        return self.since <= at and (self.until is None or at <= self.until)


ConsentChange = Literal["signed", "countersigned", "scope_withdrawn", "withdrawn", "reconsent_due"]


class ConsentState(Event):
    """A participant's consent after a change (`change` says which)."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY
    site_id: SiteId
    revision: int = Field(ge=1, description="Grows with every change of this participant")
    change: ConsentChange
    scopes: tuple[ScopeConsent, ...] = ()
    document_version: int | None = Field(default=None, ge=1)
    document_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    language: str | None = Field(default=None, max_length=35)
    countersigned: bool = False
    withdrawn_at: AwareDatetime | None = Field(
        default=None, description="Set by a full withdrawal (every scope ends then)"
    )
    # A protocol amendment asks for consent to a newer version by this day; data keeps
    # flowing under the earlier consent meanwhile (decision 0081).
    reconsent_version: int | None = Field(default=None, ge=1)
    reconsent_by: date | None = None

    def scope(self, scope: ConsentScope) -> ScopeConsent | None:
        return next((s for s in self.scopes if s.scope is scope), None)

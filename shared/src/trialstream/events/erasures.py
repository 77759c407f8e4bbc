"""Erasure of a participant's personal data (GDPR Article 17; issue 18, decision 0086).

The consent service records a request and announces it as `ErasureRequested` on the
compacted `erasures` topic, keyed by participant_id: the latest record per participant is
the request every service acts on. Each service that holds personal data about the
participant erases it in its own schema and answers `ErasureDone` on the compacted
`erasure-status` topic, keyed by `<participant_id>|<service>`, so the request shows per
service what is finished. Only pseudonymous ids travel: no reason text, no names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field

from trialstream.events.base import DEFAULT_STUDY, Event, ParticipantId, StudyId


class LegalBasis(StrEnum):
    """Why the data is erased: the grounds of GDPR Article 17(1), a fixed list."""

    NO_LONGER_NECESSARY = "art17-1a"  # no longer necessary for the purpose
    CONSENT_WITHDRAWN = "art17-1b"  # consent withdrawn, no other legal ground
    OBJECTION = "art17-1c"  # objection under Article 21
    UNLAWFUL = "art17-1d"  # unlawfully processed
    LEGAL_OBLIGATION = "art17-1e"  # erasure required by law
    CHILD_INFORMATION_SOCIETY = "art17-1f"  # collected from a child (Article 8)


RequestedBy = Literal["participant", "staff"]


class ErasureRequested(Event):
    """Erase this participant's personal data; `keep_collected_data` is the study's
    regulatory retention (Art. 17(3)(c)/(d)) at the time of the request: data collected
    under consent stays, pseudonymised, where the study's file says so."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY
    request_id: UUID
    legal_basis: LegalBasis
    requested_by: RequestedBy
    keep_collected_data: bool = Field(
        description="Readings, scores and coded answers stay (pseudonymous) for the trial"
    )


class ErasureDone(Event):
    """One service finished erasing one participant (`erased` counts what it removed or
    pseudonymised, by kind, for the request's report)."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    request_id: UUID
    service: str = Field(pattern=r"^[a-z][a-z0-9-]{1,31}$")
    erased: dict[str, int] = Field(default_factory=dict)

    def key(self) -> str:
        return f"{self.participant_id}|{self.service}"

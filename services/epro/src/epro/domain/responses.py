"""A stored response version: what the participant (or staff, for a correction) answered,
when, to which questionnaire version, and how it scored. Versions are never changed; a
correction is the next version (decision 0012's append-only responses)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

# What the answers and scores are: JSON, as the questionnaire version defines them.
Answers = dict[str, Any]
Scores = dict[str, dict[str, Any]]  # score name -> {"value": ..., "band": ...}


@dataclass(frozen=True)
class ResponseVersion:
    response_id: UUID
    version: int
    participant_id: str
    questionnaire_id: str
    questionnaire_version: int
    occurrence_id: UUID | None
    language: str
    authored_at: datetime
    received_at: datetime
    answers: Answers
    scores: Scores
    on_time: bool
    flags: list[str] = field(default_factory=list)
    author: str = "participant"  # or the staff id that corrected it
    reason: str | None = None  # why a correction was made (versions > 1)
    request_digest: str = ""  # what the request said, to tell a retry from a reuse

    @property
    def questionnaire(self) -> str:
        return f"{self.questionnaire_id}@{self.questionnaire_version}"

    def public(self) -> dict[str, Any]:
        """The version as the API shows it (JSON; the request digest stays inside)."""
        out = asdict(self)
        del out["request_digest"]
        return {
            k: str(v) if isinstance(v, UUID) else v.isoformat() if isinstance(v, datetime) else v
            for k, v in out.items()
        }

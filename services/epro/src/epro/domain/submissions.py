"""What the app sends, and how a submission is judged against its occurrence. Pure."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from trialstream.errors import Kind, Refused
from trialstream.validation import FieldError

from epro.domain.answers import check_answers
from epro.domain.definitions import Catalog, Questionnaire
from epro.domain.scoring import SafetySignal, Score, safety_signals, score

RESPONSE_EVENTS = uuid.UUID("9f3a3a57-0f0e-4c35-8a43-2b6f8e8d5c01")


class Submission(BaseModel):
    """One questionnaire response from the app. `response_id` is chosen by the app and
    makes retries safe: the same id with the same content is stored once."""

    model_config = ConfigDict(extra="forbid")
    response_id: uuid.UUID
    questionnaire_id: str
    questionnaire_version: int = Field(ge=1)
    occurrence_id: uuid.UUID | None = Field(
        default=None, description="From the QuestionnaireDue event; absent for ad-hoc entries"
    )
    language: str = "en"
    authored_at: AwareDatetime = Field(
        description="When the participant finished it (offline apps send later)"
    )
    answers: dict[str, Any]


class Correction(BaseModel):
    """A new version of a response. `based_on_version` is the version being corrected:
    a retry is recognised, a correction of an outdated version is refused."""

    model_config = ConfigDict(extra="forbid")
    based_on_version: int = Field(ge=1)
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    answers: dict[str, Any]


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Checked:
    questionnaire: Questionnaire
    scores: list[Score]
    signals: list[SafetySignal]


def invalid(errors: list[FieldError]) -> Refused:
    """The refusal of a response that does not match its questionnaire, every problem named."""
    return Refused(
        Kind.INVALID,
        "invalid_response",
        "The response does not match the questionnaire version.",
        [e.as_dict() for e in errors],
    )


def check(
    catalog: Catalog,
    questionnaire_id: str,
    version: int,
    language: str,
    answers: dict[str, Any],
) -> Checked:
    """Validate answers against the exact published version; raise `invalid` with every problem."""
    q = catalog.get(questionnaire_id, version)
    if q is None:
        raise invalid(
            [
                FieldError(
                    "questionnaire_version",
                    "unknown_questionnaire",
                    f"{questionnaire_id} v{version} is not published",
                )
            ]
        )
    errors = (
        []
        if language in q.languages
        else [
            FieldError(
                "language",
                "unsupported_language",
                f"{q.id} v{q.version} is in {', '.join(q.languages)}",
            )
        ]
    )
    errors += check_answers(q, answers)
    if errors:
        raise invalid(errors)
    return Checked(q, score(q, answers), safety_signals(q, answers))


def check_time(authored_at: datetime, now: datetime, max_skew: timedelta) -> None:
    if authored_at > now + max_skew:
        raise invalid(
            [FieldError("authored_at", "in_future", "authored_at is ahead of the server clock")]
        )


def timeliness(
    authored_at: datetime, due_at: datetime | None, expires_at: datetime | None
) -> tuple[bool, list[str]]:
    """(on_time, flags): late or out-of-window answers are accepted but flagged."""
    if due_at is None or expires_at is None:
        return True, ["unscheduled"]
    if authored_at < due_at:
        return False, ["out_of_window"]
    if authored_at > expires_at:
        return False, ["late"]
    return True, []


def response_event_id(response_id: uuid.UUID, version: int, what: str = "response") -> uuid.UUID:
    """Stable per (response, version, what): a re-sent outbox row dedupes downstream."""
    return uuid.uuid5(RESPONSE_EVENTS, f"{response_id}|{version}|{what}")

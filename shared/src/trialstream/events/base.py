"""The base every event shares: identity, time, version, and a pseudonymous subject."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated
from uuid import UUID, uuid4
from zoneinfo import available_timezones

import langcodes
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

# A study id such as "P-0042" or "site01-p7": starts with a letter, so a phone number
# cannot pass, and has no "@", space or "+", so an email or a name with a space cannot
# either. Enrolment documents that it must be a pseudonym.
ParticipantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{1,63}$")]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
SiteId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# A study, e.g. "CARDIO-HF"; records from before studies were first-class are in "default"
# (every module, any site: decision 0072).
DEFAULT_STUDY = "default"
StudyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


@cache
def _iana_zones() -> frozenset[str]:
    # the zone folder may also hold the host's own links and alternative trees
    return frozenset(
        z
        for z in available_timezones()
        if z not in {"localtime", "posixrules", "Factory"}
        and not z.startswith(("posix/", "right/"))
    )


def _iana_zone(name: str) -> str:
    """An IANA zone name ("Europe/Paris", "UTC"); not a region folder ("Europe"), a
    path, or "localtime": every service turns it into a ZoneInfo, and a bad one must be
    refused where it enters, not found by a consumer later."""
    if name not in _iana_zones():
        raise ValueError(f"'{name}' is not an IANA timezone name such as 'Europe/Paris'")
    return name


Timezone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana_zone)]


def _registered_language(tag: str) -> str:
    """A BCP 47 tag whose subtags are in the IANA language subtag registry ("en", "pt-BR",
    "zh-Hant-TW"); templates and questionnaire texts are looked up by it, so "xx-YY" or
    "english" must be refused where it enters. Kept as sent, with '-' separators."""
    if "_" in tag or not langcodes.tag_is_valid(tag):
        raise PydanticCustomError(
            "language_not_registered",
            "'{tag}' is not a registered BCP 47 language tag such as 'en' or 'pt-BR'",
            {"tag": tag},
        )
    return tag


LanguageTag = Annotated[
    str, StringConstraints(min_length=2, max_length=35), AfterValidator(_registered_language)
]

# Dates and times a person or device sends: a trial runs in this span. Outside it a value
# is a mistake (9999-12-31), and arithmetic on it (a window's end, a week after it) would
# overflow into a 500 instead of a 422 on the field.
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


def _in_span(value: date) -> date:
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise PydanticCustomError(
            "date_out_of_range",
            "must be between {earliest} and {latest}",
            {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()},
        )
    return value


TrialDate = Annotated[date, AfterValidator(_in_span)]
TrialDatetime = Annotated[AwareDatetime, AfterValidator(_in_span)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Frozen on the producer side, tolerant on the consumer side (unknown fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    schema_version: int

"""Study definitions as the identity service announces them (issue 15, decision 0072)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trialstream.events.base import Event
from trialstream.studies import StudyDefinition


class StudyDefined(Event):
    """The current definition of one study (keyed by study_id; compacted: the latest
    version per study is what counts). Every service process reads all of it, without a
    consumer group, and applies only a version newer than the one it has."""

    schema_version: Literal[1] = 1
    version: int = Field(ge=1)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    definition: StudyDefinition

"""What a consumer could not process, kept with the reason so nothing is silently lost."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trialstream.events.base import Event


class DeadLetter(Event):
    schema_version: Literal[1] = 1
    source_topic: str
    partition: int
    offset: int
    consumer_group: str
    key: str | None
    payload: str = Field(
        description="The original value, utf-8 with replacement, or base64 if binary"
    )
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    error_type: str
    reason: str

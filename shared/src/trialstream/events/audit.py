"""Audit chain heads, published outside the database (docs/audit.md, decision 0070)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trialstream.events.base import Event


class AuditHeadPublished(Event):
    """The last entry of one service's audit chain, as that service saw it. Kept by the
    broker, out of reach of the database's administrators: `trialstream audit verify
    --published` checks that each chain still contains its latest published head, which
    finds rows deleted from the end and a rewritten tail."""

    schema_version: Literal[1] = 1
    service: str = Field(max_length=64, description="The service (and key of the record)")
    seq: int = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")

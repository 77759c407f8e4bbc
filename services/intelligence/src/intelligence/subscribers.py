"""Thin subscribers: enrolments from the participants topic (service_info.GROUPS)."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime

from intelligence import service
from intelligence.service_info import GROUPS


def subscribe(runtime: Runtime) -> None:
    async def on_participants(events: Sequence[ParticipantState]) -> None:
        # every study's: forecasts count them, and a referred candidate may convert in any
        await service.record_enrolments(runtime.pool, events)

    runtime.subscribe(
        Topic.PARTICIPANTS,
        ParticipantState,
        GROUPS["participants"].name,
        on_participants,
        max_records=1000,
    )

"""The consent service's one consumer group: enrolments and withdrawals (which study and
site a participant signs for; a withdrawal made in ingest ends their consent too)."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime
from trialstream.studies import Module

from consent.service import participants
from consent.service_info import GROUPS


def subscribe(runtime: Runtime) -> None:
    async def on_participants(events: Sequence[ParticipantState]) -> None:
        ours = runtime.studies.of_module(events, Module.CONSENT)  # others' studies: skipped
        await participants.participants_changed(runtime.pool, ours)

    runtime.subscribe(
        Topic.PARTICIPANTS, ParticipantState, GROUPS["participants"].name, on_participants
    )

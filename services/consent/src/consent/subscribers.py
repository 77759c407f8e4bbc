"""The consent service's consumer groups: enrolments and withdrawals (which study and
site a participant signs for; a withdrawal made in ingest ends their consent too);
erasure requests (its own part, like every service) and the services' erasure status."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.erasure import follow_erasures
from trialstream.events.erasures import ErasureDone
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime
from trialstream.studies import Module

from consent.service import erasure, participants
from consent.service_info import GROUPS, SERVICE


def subscribe(runtime: Runtime) -> None:
    async def on_participants(events: Sequence[ParticipantState]) -> None:
        ours = runtime.studies.of_module(events, Module.CONSENT)  # others' studies: skipped
        await participants.participants_changed(runtime.pool, ours)

    runtime.subscribe(
        Topic.PARTICIPANTS, ParticipantState, GROUPS["participants"].name, on_participants
    )

    async def on_erasure_status(events: Sequence[ErasureDone]) -> None:
        await erasure.progress(runtime.pool, events)

    follow_erasures(runtime, SERVICE.name, GROUPS["erasures"].name, erasure.erase)
    runtime.subscribe(
        Topic.ERASURE_STATUS, ErasureDone, GROUPS["erasure-status"].name, on_erasure_status
    )

"""Ingest's one consumer group: the consents topic, kept in its own table for the upload
path's consent check (decision 0080)."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.events.consents import ConsentState
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime

from ingest import consent
from ingest.service_info import GROUPS


def subscribe(runtime: Runtime) -> None:
    async def on_consents(events: Sequence[ConsentState]) -> None:
        await consent.consents_changed(runtime.pool, events)

    runtime.subscribe(Topic.CONSENTS, ConsentState, GROUPS["consents"].name, on_consents)

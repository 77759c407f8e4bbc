"""Ingest's consumer groups: the consents topic, kept in its own table for the upload
path's consent check (decision 0080); erasure requests (decision 0086, ingest.erasure)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trialstream.erasure import follow_erasures
from trialstream.events.consents import ConsentState
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime

from ingest import consent, erasure
from ingest.service_info import GROUPS, SERVICE
from ingest.tiering_store import TierStore


def subscribe(
    runtime: Runtime, tier_store: TierStore | None = None, export_dir: Path | None = None
) -> None:
    async def on_consents(events: Sequence[ConsentState]) -> None:
        await consent.consents_changed(runtime.pool, events)

    runtime.subscribe(Topic.CONSENTS, ConsentState, GROUPS["consents"].name, on_consents)
    follow_erasures(
        runtime, SERVICE.name, GROUPS["erasures"].name, erasure.eraser(tier_store, export_dir)
    )

"""Thin subscribers: enrolments from the participants topic, sites' KRI snapshots and
dropout-risk summaries (service_info.GROUPS)."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream.events.monitoring import SiteKriSnapshot
from trialstream.events.participants import ParticipantState
from trialstream.events.retention_risk import RetentionRiskSummary
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime

from intelligence import early_warning, service
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

    async def on_snapshots(events: Sequence[SiteKriSnapshot]) -> None:
        await early_warning.record_snapshots(runtime.pool, events)

    async def on_risk(events: Sequence[RetentionRiskSummary]) -> None:
        await early_warning.record_risk(runtime.pool, events)

    runtime.subscribe(
        Topic.KRI_SNAPSHOTS,
        SiteKriSnapshot,
        GROUPS["kri_snapshots"].name,
        on_snapshots,
        max_records=1000,
    )
    runtime.subscribe(
        Topic.RETENTION_RISK,
        RetentionRiskSummary,
        GROUPS["retention_risk"].name,
        on_risk,
        max_records=1000,
    )

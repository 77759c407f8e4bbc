"""What telehealth's two consumer groups do: high-severity alerts propose urgent visits;
enrolments plan the visit windows (of the study file, or TELEHEALTH_PROTOCOL) and withdrawals cancel what is booked."""

from __future__ import annotations

from collections.abc import Sequence

from trialstream import consent_gate
from trialstream.erasure import follow_erasures
from trialstream.events.alerts import AlertRaised
from trialstream.events.consents import ConsentState
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.studies import Module

from telehealth import erasure
from telehealth.context import Context
from telehealth.service import enrolment, urgent
from telehealth.service_info import GROUPS, SERVICE

ALERTS_GROUP = GROUPS["alerts"].name
PARTICIPANTS_GROUP = GROUPS["participants"].name  # v2: see enrolment.CONSUMER


def subscribe(ctx: Context) -> None:
    async def on_alerts(alerts: Sequence[AlertRaised]) -> None:
        await urgent.on_alerts(ctx.pool, alerts, ctx.policy, ctx.urgent_horizon, ctx.clock())

    async def on_participants(events: Sequence[ParticipantState]) -> None:
        ours = ctx.runtime.studies.of_module(events, Module.TELEHEALTH)  # others: skipped
        await enrolment.on_enrolled(
            ctx.pool,
            ours,
            ctx.settings.protocol,
            (ctx.policy, ctx.urgent_horizon),
            ctx.clock(),
            study_of=ctx.runtime.studies.get,
        )

    ctx.runtime.subscribe(Topic.ALERTS, AlertRaised, ALERTS_GROUP, on_alerts)

    async def on_consents(events: Sequence[ConsentState]) -> None:
        async with ctx.pool.acquire() as conn, conn.transaction():
            await consent_gate.record(conn, events)  # for video bookings (decision 0080)

    ctx.runtime.subscribe(Topic.PARTICIPANTS, ParticipantState, PARTICIPANTS_GROUP, on_participants)
    ctx.runtime.subscribe(Topic.CONSENTS, ConsentState, GROUPS["consents"].name, on_consents)
    follow_erasures(ctx.runtime, SERVICE.name, GROUPS["erasures"].name, erasure.erase)  # 0086

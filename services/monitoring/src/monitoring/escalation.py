"""The periodic checker: escalates alerts nobody acknowledged in time, and forgets reading
ids older than the timeline's redelivery horizon.

Restart-safe and replica-safe by construction: it keeps no state of its own. Whether an
alert is due is computed from the database (received_at + the severity's deadline), and
escalation is a guarded update under a row lock in the transaction that writes the event
to the outbox (service.escalate_overdue), so a restart or a second replica can neither
lose nor repeat an escalation.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg
import structlog

from monitoring import service
from monitoring.settings import MonitoringSettings
from monitoring.timeline_readings import forget_seen_readings

log = structlog.get_logger(__name__)

PURGE_EVERY_SECONDS = 3600


class EscalationChecker:
    def __init__(self, pool: asyncpg.Pool, settings: MonitoringSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._deadlines = settings.ack_deadlines()
        self.passes = 0  # completed passes; tests wait on it instead of on the clock
        # Not at start-up: a batch processed but not committed before a long outage comes
        # back right after a restart, and its ids must still be there to drop it.
        self._last_purge = time.monotonic()

    async def check_once(self, now: datetime | None = None) -> int:
        escalated = await service.escalate_overdue(
            self._pool, self._deadlines, now or datetime.now(UTC)
        )
        if escalated:
            log.info("alerts escalated", count=escalated)
        if time.monotonic() - self._last_purge >= PURGE_EVERY_SECONDS:
            async with self._pool.acquire() as conn:
                await forget_seen_readings(conn, self._settings.timeline_dedupe_days * 86_400)
            self._last_purge = time.monotonic()
        return escalated

    async def run_pass(self) -> None:
        """One pass of the periodic loop (`Runtime.loops` logs a failure); `passes` counts
        passes tried, failed or not."""
        try:
            await self.check_once()
        finally:
            self.passes += 1

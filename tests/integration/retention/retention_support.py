"""Helpers for retention's integration tests (a client wrapper, events, a gateway)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
from helpers import eventually, publish_to, unique_id
from retention.settings import RetentionSettings
from staff_tokens import JWKS, staff_auth
from trialstream.events.base import Event
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import ReadingReceived
from trialstream.events.topics import Topic
from trialstream.reading_summaries import summarise

ADMIN = "retention-admin"
# A platform admin signed in (the admin token only bootstraps the identity service).
AUTH = staff_auth(None, "platform_admin", subject="retention-admin", name="Retention Admin")
# What a channel gateway reports receipts with.
RECEIPT_TOKEN = "retention-receipts"
RECEIPTS = {"Authorization": f"Bearer {RECEIPT_TOKEN}"}
NO_QUIET_HOURS = {"quiet_start": "00:00", "quiet_end": "00:00"}


def settings_for(kafka: str, database_url: str, **overrides: Any) -> RetentionSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database_url,
        "admin_token": ADMIN,
        "receipt_token": RECEIPT_TOKEN,
        "oidc_jwks": JWKS,
        "kafka_session_timeout_ms": 2000,
        "dispatch_interval_seconds": 0.1,
        "sweep_interval_seconds": 3600,
        "risk_interval_seconds": 3600,
        **overrides,
    }
    return RetentionSettings(**values)


@dataclass
class Retention:
    client: httpx.AsyncClient
    kafka: str
    database_url: str

    async def publish(self, topic: Topic, events: Sequence[Event]) -> None:
        await publish_to(
            self.kafka, topic, [(getattr(e, "participant_id", None), e) for e in events]
        )

    async def readings(self, readings: Sequence[ReadingReceived]) -> None:
        """What retention reads of readings: ingest's summaries of them (decision 0092)."""
        study = readings[0].study_id
        await self.publish(Topic.READING_SUMMARIES, summarise(readings, study, datetime.now(UTC)))

    async def participant(
        self, site: str | None = None, study: str = "default", **prefs: Any
    ) -> str:
        pid = unique_id("P")
        if site is not None:
            state = ParticipantState(participant_id=pid, site_id=site, study_id=study)
            await self.publish(Topic.PARTICIPANTS, [state])
            # Enrolments and triggers travel on different topics, read by different consumer
            # groups: nothing orders them. A test that needs the site must wait for it, as
            # the service itself joins the site at query time.
            await eventually(
                lambda: self.sql("SELECT 1 FROM participants WHERE participant_id = $1", pid)
            )
        r = await self.client.put(
            f"/v1/admin/participants/{pid}/preferences",
            json={**NO_QUIET_HOURS, **prefs},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        return pid

    async def nudges(self, pid: str) -> list[dict[str, Any]]:
        r = await self.client.get(f"/v1/participants/{pid}/nudges", headers=AUTH)
        assert r.status_code == 200, r.text
        return list(r.json()["nudges"])

    async def nudges_where(self, pid: str, count: int, **equal: Any) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            found = [n for n in await self.nudges(pid) if all(n[k] == v for k, v in equal.items())]
            return found if len(found) >= count else None

        return await eventually(check)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            self.database_url, server_settings={"search_path": "retention"}
        )
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


def due_event(pid: str, hours_open: float = 12) -> QuestionnaireDue:
    now = datetime.now(UTC)
    return QuestionnaireDue(
        participant_id=pid,
        occurrence_id=uuid4(),
        questionnaire_id="daily-diary",
        questionnaire_version=1,
        due_at=now - timedelta(seconds=1),
        expires_at=now + timedelta(hours=hours_open),
    )


def missed_in_a_row(pid: str, count: int = 3) -> list[QuestionnaireMissed]:
    """`count` daily questionnaires missed, one a day up to yesterday (three in a row make a
    coordinator task)."""
    now = datetime.now(UTC)
    return [
        QuestionnaireMissed(
            participant_id=pid,
            occurrence_id=uuid4(),
            questionnaire_id="daily-diary",
            questionnaire_version=1,
            due_at=now - timedelta(days=count - i),
            expires_at=now - timedelta(days=count - i, hours=-12),
        )
        for i in range(count)
    ]


@dataclass
class Gateway:
    """A real HTTP server on 127.0.0.1 answering with scripted status codes."""

    statuses: list[int]
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    # Scripted answers for one participant's nudges: the shared broker can hold other
    # tests' triggers, whose nudges would otherwise take the scripted answers first.
    scripted: dict[str, list[int]] = field(default_factory=dict)

    def requests_for(self, participant_id: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["body"].get("participant_id") == participant_id]

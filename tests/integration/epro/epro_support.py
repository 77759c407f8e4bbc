"""Helpers for ePRO integration tests: an app client, enrolment over the topic, request bodies."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from epro.main import create_app
from epro.settings import EproSettings
from helpers import eventually, publish_to, serving, unique_id
from staff_tokens import JWKS, staff_auth
from trialstream.events.base import Event
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

ADMIN = "epro-admin"


async def publish(kafka: str, topic: Topic, events: Sequence[tuple[str, Event]]) -> None:
    await publish_to(kafka, topic, list(events))


def epro_settings(kafka: str, database_url: str, protocol: Path | None = None) -> EproSettings:
    return EproSettings(
        protocol_path=protocol,
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
        scheduler_enabled=False,  # tests drive the scheduler's clock themselves
    )


@dataclass
class Epro:
    client: httpx.AsyncClient
    kafka: str
    database_url: str

    async def enroll(
        self,
        site: str = "site-a",
        timezone: str = "Europe/Berlin",
        enrolled_at: datetime | None = None,
        study: str = "default",
    ) -> tuple[str, dict[str, str]]:
        """A participant enrolled through the topic, and an app credential for it."""
        participant = unique_id("P")
        event = ParticipantState(
            participant_id=participant,
            study_id=study,
            site_id=site,
            timezone=timezone,
            occurred_at=enrolled_at or datetime.now(UTC),
        )
        await publish(self.kafka, Topic.PARTICIPANTS, [(participant, event)])

        async def issued() -> str | None:
            r = await self.client.post(
                f"/v1/admin/participants/{participant}/app-credentials", headers=self.admin
            )
            return str(r.json()["token"]) if r.status_code == 201 else None

        token = await eventually(issued)
        return participant, {"Authorization": f"Bearer {token}"}

    async def withdraw(
        self,
        participant: str,
        withdrawn_at: datetime,
        site: str = "site-a",
        timezone: str = "Europe/Berlin",
    ) -> ParticipantState:
        """Ingest's withdrawal on the participants topic (the participant's whole state, as
        ingest publishes it); returns once ePRO has recorded it."""
        event = ParticipantState(
            participant_id=participant,
            site_id=site,
            timezone=timezone,
            status="withdrawn",
            withdrawn_at=withdrawn_at,
        )
        await publish(self.kafka, Topic.PARTICIPANTS, [(participant, event)])

        async def recorded() -> bool:
            rows = await self.sql(
                "SELECT 1 FROM participants WHERE participant_id = $1 AND withdrawn_at IS NOT NULL",
                participant,
            )
            return bool(rows)

        await eventually(recorded)
        return event

    async def staff(self, site: str, role: str = "site_staff") -> dict[str, str]:
        """A person with `role` at `site` (a monitor: every site of the study)."""
        site_role = role in ("site_staff", "investigator")
        return staff_auth(site if site_role else None, role, subject=unique_id("nurse"))

    @property
    def admin(self) -> dict[str, str]:
        """A platform admin (the admin token only bootstraps the identity service)."""
        return staff_auth(None, "platform_admin", subject="epro-admin", name="ePRO Admin")

    async def submit(self, auth: dict[str, str], body: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/v1/responses", json=body, headers=auth)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url, server_settings={"search_path": "epro"})
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@asynccontextmanager
async def running_epro(
    kafka: str, database_url: str, protocol: Path
) -> AsyncIterator[tuple[Epro, asyncpg.Pool]]:
    """ePRO with a given protocol, and its pool for driving the scheduler's clock."""
    app = create_app(epro_settings(kafka, database_url, protocol))
    async with serving(app) as client:
        yield Epro(client, kafka, database_url), app.state.runtime.pool


def phq9_body(*values: int, **extra: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {f"phq9-{i}": str(v) for i, v in enumerate(values, 1)}
    if any(values):
        answers["phq9-10"] = "somewhat"
    return {
        "response_id": str(uuid.uuid4()),
        "questionnaire_id": "phq-9",
        "questionnaire_version": 1,
        "language": "en",
        "authored_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "answers": answers,
        **extra,
    }


def daily_protocol(path: Path, zone: str, schedules: dict[str, tuple[datetime, int]]) -> Path:
    """A protocol of daily diaries, each at the local wall time of a given instant."""
    from zoneinfo import ZoneInfo

    out = [
        {
            "schedule_id": name,
            "questionnaire_id": "pain-nrs",
            "questionnaire_version": 1,
            "rule": {
                "kind": "daily",
                "at": at.astimezone(ZoneInfo(zone)).strftime("%H:%M"),
                "window_minutes": window,
            },
        }
        for name, (at, window) in schedules.items()
    ]
    path.write_text(json.dumps({"schedules": out}))
    return path

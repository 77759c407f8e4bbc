"""Test harness: a telehealth app on the real broker and database, with a clock tests move."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from helpers import eventually, publish_to, unique_id
from staff_tokens import staff_auth
from trialstream.events.base import Event
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic

ADMIN = "telehealth-admin"
T0 = datetime(2030, 1, 7, 6, 0, tzinfo=UTC)  # Monday, 07:00 in Berlin
VIDEO_BASE = "https://video.test/room"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Telehealth:
    client: httpx.AsyncClient
    kafka: str
    database_url: str
    clock: Clock
    app: Any
    site: str = field(default_factory=lambda: unique_id("site"))

    async def publish(self, topic: Topic, events: Sequence[tuple[str, Event]]) -> None:
        await publish_to(self.kafka, topic, list(events))

    async def admin(self, method: str, url: str, body: dict[str, Any]) -> httpx.Response:
        # a platform admin signed in (the admin token only bootstraps the identity service)
        auth = staff_auth(None, "platform_admin", subject="telehealth-admin", name="TH Admin")
        return await self.client.request(method, url, json=body, headers=auth)

    async def staff(
        self, site: str | None = None, hours: str = "09:00-12:00"
    ) -> tuple[str, dict[str, str]]:
        """A nurse of `site`, registered as a clinician there and available every day during
        `hours` (site time): their id and the Authorization header of their access token."""
        staff_id = unique_id("nurse")
        site = site or self.site
        r = await self.admin("POST", "/v1/admin/staff", {"staff_id": staff_id, "site_id": site})
        assert r.status_code == 201, r.text
        auth = staff_auth(site, "site_staff", subject=staff_id)
        start, end = hours.split("-")
        weekly = [{"weekday": d, "start": start, "end": end} for d in range(7)]
        r = await self.client.put(
            f"/v1/staff/{staff_id}/weekly-hours", json={"hours": weekly}, headers=auth
        )
        assert r.status_code == 200, r.text
        return staff_id, auth

    async def enrol(
        self,
        count: int = 1,
        timezone: str = "Europe/Berlin",
        site: str | None = None,
        enrolled_at: datetime = T0,
        study: str = "default",
    ) -> list[str]:
        ids = [unique_id("P") for _ in range(count)]
        events = [
            (
                p,
                ParticipantState(
                    participant_id=p,
                    study_id=study,
                    site_id=site or self.site,
                    timezone=timezone,
                    occurred_at=enrolled_at,
                ),
            )
            for p in ids
        ]
        await self.publish(Topic.PARTICIPANTS, events)
        return ids

    async def visits(self, participant: str, auth: dict[str, str]) -> list[dict[str, Any]]:
        async def ready() -> list[dict[str, Any]] | None:
            r = await self.client.get(f"/v1/participants/{participant}/visits", headers=auth)
            return list(r.json()["visits"]) if r.status_code == 200 else None

        return await eventually(ready)

    async def visit(self, participant: str, auth: dict[str, str], name: str) -> dict[str, Any]:
        return next(v for v in await self.visits(participant, auth) if v["name"] == name)

    async def book(
        self, auth: dict[str, str], visit_id: str, staff_id: str, starts_at: datetime, **extra: str
    ) -> httpx.Response:
        body = {
            "visit_id": visit_id,
            "staff_id": staff_id,
            "starts_at": starts_at.isoformat(),
            **extra,
        }
        return await self.client.post("/v1/bookings", json=body, headers=auth)

    async def sql(self, query: str, *args: Any) -> Any:
        """The first value of the first row."""
        rows = await self.sql_rows(query, *args)
        return rows[0][0] if rows else None

    async def sql_rows(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            self.database_url, server_settings={"search_path": "telehealth"}
        )
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

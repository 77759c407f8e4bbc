"""Channels deliver a rendered nudge. Two implementations: a webhook to a delivery
gateway (push/SMS/email provider) and a local channel that records to the database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg
import httpx
import structlog

from retention import repository

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outgoing:
    nudge_id: UUID
    participant_id: str
    kind: str
    channel: str
    language: str
    body: str
    address: str | None  # never logged; only sent to the configured gateway


@dataclass(frozen=True)
class Delivery:
    ok: bool
    delivered: bool  # the channel knows it reached the participant (else a receipt will say)
    detail: str
    permanent: bool = False  # a failure retrying cannot fix (e.g. HTTP 400)


class Channel(Protocol):
    name: str

    async def deliver(self, nudge: Outgoing) -> Delivery: ...


class LocalChannel:
    """The demo channel: the participant's "phone" is a table. Idempotent on nudge id."""

    name = "local"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def deliver(self, nudge: Outgoing) -> Delivery:
        await repository.local_delivery(
            self._pool, nudge.nudge_id, nudge.participant_id, nudge.channel, nudge.body
        )
        return Delivery(ok=True, delivered=True, detail="recorded by the local channel")


_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookChannel:
    """POSTs the nudge as JSON to the gateway; retries transport errors, 408/429/5xx with
    exponential backoff. `Idempotency-Key: <nudge id>` lets the gateway drop the duplicate
    that a crash between its answer and our commit would cause."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
    ) -> None:
        self._url = url
        self._client = client
        self._attempts = attempts
        self._backoff = backoff_seconds

    async def deliver(self, nudge: Outgoing) -> Delivery:
        body = {
            "nudge_id": str(nudge.nudge_id),
            "participant_id": nudge.participant_id,
            "kind": nudge.kind,
            "channel": nudge.channel,
            "language": nudge.language,
            "text": nudge.body,
            "address": nudge.address,
        }
        headers = {"Idempotency-Key": str(nudge.nudge_id)}
        last = ""
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.post(self._url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__} on attempt {attempt}"
            else:
                if response.is_success:
                    return Delivery(
                        True, False, f"HTTP {response.status_code} on attempt {attempt}"
                    )
                last = f"HTTP {response.status_code} on attempt {attempt}"
                if response.status_code not in _RETRYABLE_STATUS:
                    return Delivery(False, False, last, permanent=True)
            log.info("webhook attempt failed", nudge_id=str(nudge.nudge_id), error=last)
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        return Delivery(False, False, last)

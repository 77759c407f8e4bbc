"""Simulated wearables uploading over HTTP, and what the platform makes of it.

Two phases against running services:
1. Flat out: concurrent clients post pre-built batches of normal readings to the ingest
   replicas (round robin). A reading counts once ingest answered 2xx, after the broker's
   acks=all. End to end is done when every anomaly replica together has scored every
   reading and the archive holds them all.
2. Paced at a fixed rate, with probes: the same normal load at `rate` readings/s, and
   every `probe_every` seconds a probe participant uploads a sustained tachycardia (7
   readings). Latency runs from the probe's request being sent to its alert being
   readable on the alerts topic: the HTTP upload, the broker, scoring, the outbox relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Role, SigningKey
from trialstream.settings import ServiceSettings

ADMIN = "bench-admin-token"
# The benchmark enrols as a person, like everyone but the identity service's bootstrap: it
# signs its own access token and the services trust its key by configuration (inline
# JWKS), as they would an external identity provider's.
BENCH_KEY = SigningKey.generate()


def staff_env() -> dict[str, str]:
    """What the services need to accept `staff_token()`."""
    return {"TRIALSTREAM_OIDC_JWKS": json.dumps(BENCH_KEY.jwks())}


def staff_token() -> str:
    defaults = ServiceSettings()
    return BENCH_KEY.issue(
        issuer=defaults.oidc_issuer,
        audience=defaults.oidc_audience,
        subject="benchmark",
        name="benchmark load generator",
        grants=[Grant(Role.PLATFORM_ADMIN, None)],
    )


PROCESSED = re.compile(
    r'^trialstream_messages_total\{group="anomaly",outcome="processed"\} (\S+)$', re.MULTILINE
)


@dataclass(frozen=True)
class Device:
    participant_id: str
    device_id: str
    token: str


def body(readings: list[dict[str, Any]]) -> bytes:
    return json.dumps({"readings": readings}).encode()


def heart_rates(device: Device, start: datetime, values: Sequence[float], step_s: int) -> bytes:
    return body(
        [
            {
                "event_id": str(uuid.uuid4()),
                "participant_id": device.participant_id,
                "device_id": device.device_id,
                "metric": "heart-rate",
                "value": value,
                "unit": "beats/min",
                "measured_at": (start + timedelta(seconds=i * step_s)).isoformat(),
            }
            for i, value in enumerate(values)
        ]
    )


async def enrol(client: httpx.AsyncClient, url: str, n: int, prefix: str) -> list[Device]:
    admin = {"Authorization": f"Bearer {staff_token()}"}

    async def post(path: str, body: dict[str, str]) -> httpx.Response:
        while True:  # one person enrolling hundreds goes over the per-credential rate limit
            r = await client.post(f"{url}{path}", headers=admin, json=body)
            if r.status_code != 429:
                return r.raise_for_status()
            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

    out = []
    for i in range(n):
        pid, dev = f"{prefix}-{uuid.uuid4().hex[:8]}", f"{prefix}-{i}-{uuid.uuid4().hex[:6]}"
        await post("/v1/admin/participants", {"participant_id": pid, "site_id": "bench"})
        r = await post("/v1/admin/devices", {"device_id": dev, "participant_id": pid})
        out.append(Device(pid, dev, r.json()["token"]))
    return out


def normal_requests(devices: list[Device], total: int, batch: int) -> list[tuple[str, bytes]]:
    """Each device's readings are one contiguous per-second stream, ending in the past."""
    per_device = -(-total // batch) // len(devices) + 1
    start = datetime.now(UTC) - timedelta(seconds=per_device * batch + 3600)
    requests = []
    for i in range(total // batch):
        device, k = devices[i % len(devices)], i // len(devices)
        values = [60.0 + (j % 7) for j in range(batch)]
        requests.append(
            (device.token, heart_rates(device, start + timedelta(seconds=k * batch), values, 1))
        )
    return requests


async def anomaly_processed(client: httpx.AsyncClient, metrics_urls: list[str]) -> float:
    total = 0.0
    for url in metrics_urls:
        match = PROCESSED.search((await client.get(url)).text)
        total += float(match.group(1)) if match else 0.0
    return total


async def archived(database_url: str, participants: Sequence[str]) -> int:
    """The archived readings of the run's own participants: counting the whole archive
    would scan a prefilled one (seconds for 20 million rows) and time that instead."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM ingest.readings WHERE participant_id = ANY($1::text[])",
                list(participants),
            )
        )
    finally:
        await conn.close()


def _limits(connections: int) -> httpx.Limits:
    # A connection idle for uvicorn's keep-alive (5 s) is closed by the server; reusing it
    # as that happens fails the request (ReadError, seen on a loaded machine in the paced
    # phase). Idle connections are dropped here first.
    return httpx.Limits(max_connections=connections, keepalive_expiry=2.0)


async def post(client: httpx.AsyncClient, url: str, token: str, payload: bytes) -> int:
    """Post an upload; on a broken connection post it again, as a device does (its readings
    keep their ids: ingest stores each once, and a repeat is not counted as accepted)."""
    for attempt in range(3):
        try:
            r = await client.post(
                f"{url}/v1/readings",
                content=payload,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
            if attempt == 2:
                raise
            continue
        r.raise_for_status()
        return int(r.json()["accepted"])
    raise AssertionError("unreachable")


async def flat_out(
    ingest_urls: list[str],
    anomaly_metrics: list[str],
    database_url: str,
    requests: list[tuple[str, bytes]],
    *,
    participants: Sequence[str],
    concurrency: int,
) -> dict[str, float]:
    """`requests` are built beforehand, so their JSON encoding is not counted as load."""
    queue = list(enumerate(requests))
    queue.reverse()
    accepted, latencies = 0, []
    async with httpx.AsyncClient(timeout=120, limits=_limits(concurrency)) as client:
        before = await anomaly_processed(client, anomaly_metrics)
        archived_before = await archived(database_url, participants)

        async def worker() -> None:
            nonlocal accepted
            while queue:
                i, (token, payload) = queue.pop()
                t0 = time.perf_counter()
                n = await post(client, ingest_urls[i % len(ingest_urls)], token, payload)
                accepted += n  # not `accepted += await ...`: that reads `accepted` first
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        uploaded_s = time.perf_counter() - t0

        async def scored() -> bool:
            return await anomaly_processed(client, anomaly_metrics) - before >= accepted

        async def stored() -> bool:
            return await archived(database_url, participants) - archived_before >= accepted

        await poll(scored, "anomaly scoring every reading")
        scored_s = time.perf_counter() - t0
        await poll(stored, "the archive holding every reading")
        archived_s = time.perf_counter() - t0
    return {
        "readings": accepted,
        "upload_readings_per_s": round(accepted / uploaded_s),
        "end_to_end_readings_per_s": round(accepted / max(scored_s, archived_s)),
        "scored_after_s": round(scored_s, 2),
        "archived_after_s": round(archived_s, 2),
        "request_p50_ms": round(1000 * statistics.median(latencies), 1),
        "request_p95_ms": round(1000 * statistics.quantiles(latencies, n=20)[-1], 1),
    }


async def paced(
    ingest_urls: list[str],
    kafka: str,
    requests: list[tuple[str, bytes]],
    probes: list[Device],
    *,
    rate: float,
    seconds: float,
    batch: int,
    probe_every: float,
) -> dict[str, float]:
    arrived: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        Topic.ALERTS, bootstrap_servers=kafka, auto_offset_reset="latest", enable_auto_commit=False
    )
    await consumer.start()
    await consumer.getmany(timeout_ms=200)
    await consumer.seek_to_end()
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=20)).values():
                now = time.perf_counter()
                for rec in records:
                    arrived.setdefault(json.loads(rec.value)["participant_id"], now)

    sent: dict[str, float] = {}
    accepted = 0
    # no pool timeout: a request waits for a free connection as long as it takes, and the
    # achieved rate says how far behind the platform fell
    timeout = httpx.Timeout(60, pool=None)
    async with httpx.AsyncClient(timeout=timeout, limits=_limits(64)) as client:
        watcher = asyncio.create_task(watch())
        t0 = time.perf_counter()

        async def normal(i: int, token: str, payload: bytes) -> None:
            nonlocal accepted
            await asyncio.sleep(max(0.0, t0 + i * batch / rate - time.perf_counter()))
            n = await post(client, ingest_urls[i % len(ingest_urls)], token, payload)
            accepted += n

        async def probe(k: int, device: Device) -> None:
            await asyncio.sleep(max(0.0, t0 + k * probe_every - time.perf_counter()))
            start = datetime.now(UTC) - timedelta(minutes=8)
            payload = heart_rates(device, start, [140.0] * 7, 60)
            sent[device.participant_id] = time.perf_counter()
            await post(client, ingest_urls[k % len(ingest_urls)], device.token, payload)

        n_probes = min(len(probes), int(seconds / probe_every))
        await asyncio.gather(
            *(normal(i, token, payload) for i, (token, payload) in enumerate(requests)),
            *(probe(k, probes[k]) for k in range(n_probes)),
        )
        achieved = accepted / (time.perf_counter() - t0)

        async def all_alerted() -> bool:
            return set(sent) <= set(arrived)

        with contextlib.suppress(TimeoutError):  # reported below with the count
            await poll(all_alerted, "every probe's alert", limit_s=60)
        stop.set()
        await watcher
    await consumer.stop()
    latencies = sorted(arrived[p] - sent[p] for p in sent if p in arrived)
    if len(latencies) < len(sent):
        raise TimeoutError(f"{len(sent) - len(latencies)} probes raised no alert within 60 s")
    return {
        "target_readings_per_s": rate,
        "achieved_readings_per_s": round(achieved),
        "probes": len(latencies),
        "alert_latency_p50_ms": round(1000 * _quantile(latencies, 0.50), 1),
        "alert_latency_p95_ms": round(1000 * _quantile(latencies, 0.95), 1),
        "alert_latency_p99_ms": round(1000 * _quantile(latencies, 0.99), 1),
        "alert_latency_max_ms": round(1000 * latencies[-1], 1),
    }


async def poll(check: Callable[[], Awaitable[bool]], what: str, limit_s: float = 300) -> None:
    deadline = time.perf_counter() + limit_s
    while True:
        if await check():
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not within {limit_s:.0f} s")
        await asyncio.sleep(0.1)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile: with 200 probes, p99 is the third slowest."""
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


async def read_back(url: str, devices: list[Device], limit: int = 1000) -> dict[str, float]:
    """Staff reads of archived readings, `GET /v1/participants/{id}/readings` over the last
    day, `limit` readings a request, one request at a time after the load: the latency of
    one request and per reading returned (issue 17: reads must not slow as the archive
    grows either)."""
    staff = {"Authorization": f"Bearer {staff_token()}"}
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    seconds, returned = [], 0
    async with httpx.AsyncClient(timeout=30) as client:
        for i, device in enumerate(devices * 3):
            path = f"{url}/v1/participants/{device.participant_id}/readings"
            started = time.perf_counter()
            r = await client.get(path, params={"from": since, "limit": limit}, headers=staff)
            elapsed = time.perf_counter() - started
            if r.status_code == 429:
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            r.raise_for_status()
            if i >= len(devices):  # the first round warms the caches
                seconds.append(elapsed)
                returned += len(r.json()["readings"])
    seconds.sort()
    per_request = returned / len(seconds)
    return {
        "read_requests": len(seconds),
        "read_readings_per_request": round(per_request),
        "read_p50_ms": round(_quantile(seconds, 0.5) * 1000, 1),
        "read_p95_ms": round(_quantile(seconds, 0.95) * 1000, 1),
        "read_us_per_reading": round(_quantile(seconds, 0.5) / per_request * 1e6, 1),
    }

"""`make bench`: the real service processes on embedded infrastructure, measured from outside.

1. Upload throughput: concurrent clients post pre-built batches of normal readings to
   ingest; a reading counts once ingest answered 2xx, i.e. after the broker's acks=all.
2. Archive: time until every uploaded reading is in PostgreSQL.
3. Reading-to-alert latency, after the load phase (a quiet system): a participant's
   sustained tachycardia is uploaded in one request; latency is from ingest's answer
   (the readings are on the broker) to the alert being readable on the alerts topic.

Numbers depend on the machine; the README records what this printed on ours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from trialstream.events.topics import Topic
from trialstream.services import discover_services
from trialstream.supervisor import Infrastructure, Supervisor, child_env, run_prepare

ADMIN = "bench-admin-token"


def body(readings: list[dict[str, Any]]) -> bytes:
    return json.dumps({"readings": readings}).encode()


def normal_batch(pid: str, device: str, start: datetime, n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": str(uuid.uuid4()),
            "participant_id": pid,
            "device_id": device,
            "metric": "heart-rate",
            "value": 60.0 + (i % 7),
            "unit": "beats/min",
            "measured_at": (start + timedelta(seconds=i)).isoformat(),
        }
        for i in range(n)
    ]


async def enrol(client: httpx.AsyncClient, url: str, n: int) -> list[tuple[str, str, str]]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    out = []
    for i in range(n):
        pid, dev = f"B-{uuid.uuid4().hex[:8]}", f"bench-{i}-{uuid.uuid4().hex[:6]}"
        (
            await client.post(
                f"{url}/v1/admin/participants",
                headers=admin,
                json={"participant_id": pid, "site_id": "bench"},
            )
        ).raise_for_status()
        r = await client.post(
            f"{url}/v1/admin/devices", headers=admin, json={"device_id": dev, "participant_id": pid}
        )
        r.raise_for_status()
        out.append((pid, dev, r.json()["token"]))
    return out


async def upload_throughput(
    url: str, devices: list[tuple[str, str, str]], total: int, batch: int, concurrency: int
) -> dict[str, float]:
    start = datetime.now(UTC) - timedelta(hours=total // batch + 2)
    per_request = [
        (
            devices[i % len(devices)][2],
            body(
                normal_batch(
                    devices[i % len(devices)][0],
                    devices[i % len(devices)][1],
                    start + timedelta(hours=i),
                    batch,
                )
            ),
        )
        for i in range(total // batch)
    ]
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in per_request:
        queue.put_nowait(item)
    accepted = 0
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            token, payload = queue.get_nowait()
            t0 = time.perf_counter()
            r = await client.post(
                f"{url}/v1/readings",
                content=payload,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()
            accepted += r.json()["accepted"]

    async with httpx.AsyncClient(
        timeout=120, limits=httpx.Limits(max_connections=concurrency)
    ) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {
        "readings": accepted,
        "seconds": elapsed,
        "readings_per_s": accepted / elapsed,
        "request_p50_ms": 1000 * statistics.median(latencies),
        "request_p95_ms": 1000 * statistics.quantiles(latencies, n=20)[-1],
    }


async def wait_archived(database_url: str, expected: int, limit_s: float = 300) -> float:
    conn = await asyncpg.connect(database_url)
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < limit_s:
            if await conn.fetchval("SELECT count(*) FROM ingest.readings") >= expected:
                return time.perf_counter() - t0
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise TimeoutError("archive did not catch up")


async def alert_latency(
    url: str, kafka: str, devices: list[tuple[str, str, str]], episodes: int
) -> list[float]:
    consumer = AIOKafkaConsumer(
        Topic.ALERTS, bootstrap_servers=kafka, auto_offset_reset="latest", enable_auto_commit=False
    )
    await consumer.start()
    await consumer.getmany(timeout_ms=200)
    await consumer.seek_to_end()
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        for pid, dev, token in devices[:episodes]:
            now = datetime.now(UTC) - timedelta(minutes=8)
            run = [
                {
                    "event_id": str(uuid.uuid4()),
                    "participant_id": pid,
                    "device_id": dev,
                    "metric": "heart-rate",
                    "value": 140.0,
                    "unit": "beats/min",
                    "measured_at": (now + timedelta(minutes=m)).isoformat(),
                }
                for m in range(7)
            ]
            r = await client.post(
                f"{url}/v1/readings",
                content=body(run),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            r.raise_for_status()
            sent = time.perf_counter()
            found = False
            while not found and time.perf_counter() - sent < 30:
                for records in (await consumer.getmany(timeout_ms=20)).values():
                    for rec in records:
                        if json.loads(rec.value).get("participant_id") == pid:
                            found = True
            if not found:
                raise TimeoutError(f"no alert for {pid} within 30 s")
            latencies.append(time.perf_counter() - sent)
    await consumer.stop()
    return latencies


async def measure(infra: Infrastructure, args: argparse.Namespace) -> dict[str, Any]:
    url = "http://127.0.0.1:8001"
    async with httpx.AsyncClient(timeout=30) as client:
        devices = await enrol(client, url, args.devices)
    up = await upload_throughput(url, devices, args.readings, args.batch, args.concurrency)
    archive_tail = await wait_archived(infra.database_url, up["readings"])
    result: dict[str, Any] = {"upload": up, "archive_tail_seconds": archive_tail}
    if args.episodes:
        lat = await alert_latency(url, infra.kafka_bootstrap_servers, devices, args.episodes)
        result["alert_latency_ms"] = {
            "p50": 1000 * statistics.median(lat),
            "max": 1000 * max(lat),
            "n": len(lat),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=10, help="0 skips the alert phase")
    parser.add_argument("--only", nargs="*", default=None, help="run only these services")
    args = parser.parse_args()
    run_dir = Path(".trialstream") / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    services = discover_services(args.only)  # before starting anything that would need stopping
    infra = Infrastructure.resolve(env, run_dir)
    supervisor = Supervisor(child_env(infra, ADMIN) | {"TRIALSTREAM_LOG_LEVEL": "WARNING"}, run_dir)
    try:
        run_prepare(infra, services, 6)
        for info in services:
            supervisor.spawn_service(info, 0)
        supervisor.wait_ready()
        result = asyncio.run(measure(infra, args))
    finally:
        supervisor.stop_all()
        infra.stop()
    result["config"] = vars(args)
    print(json.dumps(result, indent=2))
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())

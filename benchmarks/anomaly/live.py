"""`python -m benchmarks.anomaly.live`: the live anomaly consumer's throughput, measured
from outside on the embedded broker and PostgreSQL (as `make bench` does).

1. Start the infrastructure, create topics (`--partitions`) and run the anomaly migrations.
2. Produce `--readings` generated readings (generate.py, arrival order) to Topic.READINGS
   as ReadingReceived events keyed by participant_id, acks=all, BEFORE the service runs:
   the backlog is then what the consumer has to chew through, and producing does not
   compete with it for the machine's two cores. occurred_at (ingest's receive time) is
   the time of producing, so wall-clock logic sees fresh readings.
3. Start one anomaly process; poll its consumer group's committed offsets until they reach
   the end offsets (lag 0). Every commit follows score + state checkpoint + outbox insert
   of that batch, so committed readings are fully processed ones.

Reported: readings/s from the service answering /readyz to lag 0 (end to end: group join
included), and from the first commit seen to lag 0 (steady state); also the time from
process start, and at lag 0 the alerts stored (by rule) and the outbox rows the relay has
not sent yet. Goal: >= 50,000/s. Offsets are polled every 0.1 s, so times are +-0.1 s.
The service runs on a free port, not its base port, so a running `trialstream up` is no
obstacle; it is the only part of the run that needs the anomaly service installed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from trialstream.embedded import free_port
from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo, discover_services
from trialstream.supervisor import Infrastructure, Supervisor, child_env, run_prepare

from benchmarks.anomaly.generate import Dataset, GeneratorConfig, generate
from benchmarks.anomaly.jsonl import iter_lines
from benchmarks.anomaly.report import GOALS

GROUP = (
    "anomaly"  # anomaly.service_info.GROUPS["readings"], named here to avoid importing the service
)
READINGS_PER_PARTICIPANT_DAY = 3744  # 1440 x 2 every minute + 288 x 3 every 5 minutes


def dataset(readings: int, participants: int, seed: int) -> Dataset:
    days = -(-readings // (participants * READINGS_PER_PARTICIPANT_DAY)) + 1
    data = generate(GeneratorConfig(participants=participants, days=max(days, 2), seed=seed))
    n = min(readings, len(data.t_us))
    cut = {f: getattr(data, f)[:n] for f in ("p", "t_us", "m", "v", "offset_min")}
    return dataclasses.replace(data, **cut)


Offsets = dict[TopicPartition, int]


async def produce(bootstrap: str, data: Dataset) -> tuple[Offsets, Offsets, float]:
    """Send every reading as a ReadingReceived event, acks=all. Returns the first and one
    past the last offset written per partition, and the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-anomaly-live",
        acks="all",
        enable_idempotence=False,
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    keys = [x.participant_id.encode() for x in data.participants]
    extra = f',"occurred_at":"{datetime.now(UTC).isoformat()}","schema_version":1'
    headers = [("content-type", b"application/json")]
    first: Offsets = {}
    end: Offsets = {}
    started = time.perf_counter()
    await producer.start()
    try:
        done = 0
        for lines in iter_lines(data, extra=extra, end=""):
            people = data.p[done : done + len(lines)].tolist()
            futures = [
                await producer.send(Topic.READINGS, line.encode(), key=keys[p], headers=headers)
                for line, p in zip(lines, people, strict=True)
            ]
            for meta in await asyncio.gather(*futures):
                tp = TopicPartition(meta.topic, meta.partition)
                first[tp] = min(first.get(tp, meta.offset), meta.offset)
                end[tp] = max(end.get(tp, 0), meta.offset + 1)
            done += len(lines)
    finally:
        await producer.stop()
    return first, end, time.perf_counter() - started


async def committed(reader: AIOKafkaConsumer, end: Offsets) -> int:
    """Readings the group has committed past, counted up to the produced end offsets.
    `reader` carries the group id but never subscribes, so it never joins the group."""
    total = 0
    for tp, last in end.items():
        offset = await reader.committed(tp)
        total += min(offset or 0, last)
    return total


async def watch(
    bootstrap: str, ready_url: str, supervisor: Supervisor, end: Offsets, limit_s: float
) -> dict[str, float]:
    """Seconds from now (the process was just spawned) to ready, first commit and lag 0."""
    spawned = time.perf_counter()
    marks: dict[str, float] = {}
    target = sum(end.values())
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    await reader.start()
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                supervisor.check_alive()
                now = time.perf_counter() - spawned
                if now > limit_s:
                    raise TimeoutError(f"lag not 0 after {limit_s:.0f} s: {marks}")
                if "ready" not in marks:
                    try:
                        if (await client.get(ready_url)).status_code == 200:
                            marks["ready"] = now
                    except httpx.HTTPError:
                        pass
                done = await committed(reader, end)
                if done and "first_commit" not in marks:
                    marks["first_commit"], marks["first_commit_readings"] = now, done
                if done >= target:
                    marks["lag_zero"] = now
                    return marks
                await asyncio.sleep(0.1)
    finally:
        await reader.stop()


STORED = {
    "alerts": "SELECT count(*) FROM anomaly.alerts",
    "outbox_unsent": "SELECT count(*) FROM anomaly.outbox WHERE sent_at IS NULL",
    "participant_states": "SELECT count(*) FROM anomaly.participant_state",
}


BY_RULE = "SELECT rule, count(*) AS n FROM anomaly.alerts GROUP BY rule ORDER BY n DESC"


async def stored(database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        counts: dict[str, Any] = {k: int(await conn.fetchval(sql)) for k, sql in STORED.items()}
        counts["alerts_by_rule"] = {r["rule"]: int(r["n"]) for r in await conn.fetch(BY_RULE)}
        return counts
    finally:
        await conn.close()


def measure(args: argparse.Namespace, info: ServiceInfo, data: Dataset) -> dict[str, Any]:
    run_dir = Path(".trialstream") / "bench-anomaly"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    infra = Infrastructure.resolve(env, run_dir)
    supervisor = Supervisor(
        child_env(infra, "bench-admin-token") | {"TRIALSTREAM_LOG_LEVEL": "WARNING"}, run_dir
    )
    try:
        run_prepare(infra, [info], args.partitions)
        first, end, produce_s = asyncio.run(produce(infra.kafka_bootstrap_servers, data))
        readings = sum(end.values()) - sum(first.values())
        print(f"produced {readings:,} readings in {produce_s:.1f} s; starting one anomaly process")
        port = free_port()  # not the service's base port: a `trialstream up` may hold it
        ready_url = f"http://127.0.0.1:{port}/readyz"
        supervisor.spawn(
            info.name,
            [sys.executable, "-m", info.module],
            {f"{info.env_prefix}PORT": str(port), "TRIALSTREAM_REPLICA": "0"},
            ready_url,
        )
        marks = asyncio.run(
            watch(infra.kafka_bootstrap_servers, ready_url, supervisor, end, args.timeout)
        )
        db = asyncio.run(stored(infra.database_url))
    finally:
        supervisor.stop_all()
        infra.stop()
    lag0, ready = marks["lag_zero"], marks.get("ready", 0.0)
    steady = readings - marks["first_commit_readings"]
    return {
        "readings": readings,
        "partitions": args.partitions,
        "produce_seconds": produce_s,
        "seconds_from_spawn": marks,
        "readings_per_s_end_to_end": readings / (lag0 - ready),
        "readings_per_s_steady": steady / (lag0 - marks["first_commit"]) if steady else None,
        "database": db,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to reach lag 0")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    info = discover_services(["anomaly"])[0]  # before starting anything that needs stopping
    data = dataset(args.readings, args.participants, args.seed)
    result = measure(args, info, data)
    ready, lag0 = (
        result["seconds_from_spawn"].get("ready", 0.0),
        result["seconds_from_spawn"]["lag_zero"],
    )
    print(
        f"lag 0 after {lag0:.1f} s from process start ({lag0 - ready:.1f} s after /readyz): "
        f"{result['readings_per_s_end_to_end']:,.0f} readings/s end to end, "
        f"{result['readings_per_s_steady'] or 0:,.0f} readings/s steady state "
        f"(goal {GOALS['live_readings_per_s']})"
    )
    print(f"stored: {result['database']}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

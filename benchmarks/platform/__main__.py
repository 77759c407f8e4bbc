"""`make bench`: the real service processes on embedded infrastructure, for 1, 2 and 3
anomaly replicas, each on a fresh broker and database. See load.py for the phases.

Numbers depend on the machine and on what else runs on it; the README records what this
printed on ours, with the command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from trialstream.services import ServiceInfo, discover_services
from trialstream.supervisor import Infrastructure, Supervisor, child_env, run_prepare

from benchmarks.platform.load import (
    ADMIN,
    enrol,
    flat_out,
    normal_requests,
    paced,
    read_back,
    staff_env,
)
from benchmarks.platform.prefill import prefill
from benchmarks.platform.resources import ResourceSampler

LOAD_GENERATOR = "load generator"
# Devices upload over HTTP -> ingest (validation, archive, publish) -> broker -> anomaly.
# The other services read the same topic on their own replicas in a deployment; `--services
# all` runs them too, all on this one machine.
PIPELINE = ("ingest", "anomaly")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anomaly-replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--ingest-replicas", type=int, default=1)
    parser.add_argument("--readings", type=int, default=200_000, help="flat-out phase")
    parser.add_argument("--batch", type=int, default=2000, help="readings per request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20_000, help="paced phase, readings/s")
    parser.add_argument("--paced-seconds", type=float, default=20)
    parser.add_argument("--paced-batch", type=int, default=500)
    parser.add_argument("--probe-every", type=float, default=0.1, help="seconds")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--prefill-readings",
        type=int,
        default=0,
        help="archive this many readings (last 30 days, 10,000 participants) before measuring",
    )
    parser.add_argument(
        "--services",
        nargs="+",
        default=list(PIPELINE),
        help="the services to run (default: the pipeline the goals name); 'all' for every one",
    )
    args = parser.parse_args()
    if args.services != ["all"]:
        known = {s.name for s in discover_services(None)}
        if unknown := set(args.services) - known:
            parser.error(f"unknown services {sorted(unknown)}; known: {sorted(known)} or 'all'")
        if missing := set(PIPELINE) - set(args.services):
            parser.error(f"the benchmark drives {' and '.join(PIPELINE)}: add {sorted(missing)}")
    return args


async def measure(
    infra: Infrastructure,
    supervisor: Supervisor,
    services: list[ServiceInfo],
    replicas: dict[str, int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    by_name = {s.name: s for s in services}
    ingest_urls = [
        f"http://127.0.0.1:{by_name['ingest'].port_of(i)}" for i in range(replicas["ingest"])
    ]
    metrics = [
        f"http://127.0.0.1:{by_name['anomaly'].port_of(i)}/metrics"
        for i in range(replicas["anomaly"])
    ]
    async with httpx.AsyncClient(timeout=30) as client:
        devices = await enrol(client, ingest_urls[0], args.devices, "B")
        probes = await enrol(
            client, ingest_urls[0], int(args.paced_seconds / args.probe_every) + 1, "Q"
        )
    pids = {c.name: c.process.pid for c in supervisor.children}
    if infra.embedded_kafka and infra.embedded_kafka.process:
        pids["broker (Tansu)"] = infra.embedded_kafka.process.pid
    if infra.embedded_postgres and infra.embedded_postgres.process:
        pids["PostgreSQL"] = infra.embedded_postgres.process.pid
    pids[LOAD_GENERATOR] = os.getpid()  # measured alone: the services are its children
    alone = frozenset({LOAD_GENERATOR})
    flat_requests = normal_requests(devices, args.readings, args.batch)
    with ResourceSampler(pids, alone=alone) as flat_usage:
        flat = await flat_out(
            ingest_urls,
            metrics,
            infra.database_url,
            flat_requests,
            participants=[d.participant_id for d in devices],
            concurrency=args.concurrency,
        )
    paced_requests = normal_requests(devices, int(args.rate * args.paced_seconds), args.paced_batch)
    with ResourceSampler(pids, alone=alone) as paced_usage:
        pace = await paced(
            ingest_urls,
            infra.kafka_bootstrap_servers,
            paced_requests,
            probes,
            rate=args.rate,
            seconds=args.paced_seconds,
            batch=args.paced_batch,
            probe_every=args.probe_every,
        )
    reads = await read_back(ingest_urls[0], devices)
    return {
        "flat_out": flat,
        "flat_out_resources": flat_usage.report(),
        "paced": pace,
        "paced_resources": paced_usage.report(),
        "reads": reads,
    }


def run_once(args: argparse.Namespace, anomaly_replicas: int, run_dir: Path) -> dict[str, Any]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    wanted = None if args.services == ["all"] else args.services
    services = discover_services(wanted)  # before starting anything that would need stopping
    replicas = {s.name: 1 for s in services} | {
        "anomaly": anomaly_replicas,
        "ingest": args.ingest_replicas,
    }
    infra = Infrastructure.resolve(env, run_dir)
    supervisor = Supervisor(
        child_env(infra, ADMIN) | staff_env() | {"TRIALSTREAM_LOG_LEVEL": "WARNING"},
        run_dir,
        restart=False,
        own_database_logins=infra.embedded_postgres is not None,  # as `trialstream up` does
    )
    try:
        run_prepare(infra, services, args.partitions)
        prefill_s = 0.0
        if args.prefill_readings:
            prefill_s = asyncio.run(prefill(infra.database_url, args.prefill_readings))
        for info in services:
            for replica in range(replicas[info.name]):
                supervisor.spawn_service(info, replica)
        supervisor.wait_ready()
        result = asyncio.run(measure(infra, supervisor, services, replicas, args))
        supervisor.check_alive()  # a process that died during the run spoils the numbers
    finally:
        supervisor.stop_all()
        infra.stop()
    return {
        "anomaly_replicas": anomaly_replicas,
        "prefilled_readings": args.prefill_readings,
        "prefill_seconds": round(prefill_s, 1),
        **result,
    }


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| anomaly replicas | upload readings/s | end-to-end readings/s | request p95 ms "
        "| paced readings/s | alert p50 / p95 / p99 ms | busiest processes (flat out: cores, peak MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        flat, pace = run["flat_out"], run["paced"]
        busiest = sorted(
            run["flat_out_resources"].items(), key=lambda kv: kv[1]["cpu_cores"], reverse=True
        )[:4]
        lines.append(
            f"| {run['anomaly_replicas']} | {flat['upload_readings_per_s']:,} "
            f"| {flat['end_to_end_readings_per_s']:,} | {flat['request_p95_ms']:,.0f} "
            f"| {pace['achieved_readings_per_s']:,} "
            f"| {pace['alert_latency_p50_ms']:.0f} / {pace['alert_latency_p95_ms']:.0f} "
            f"/ {pace['alert_latency_p99_ms']:.0f} | "
            + ", ".join(f"{n} {u['cpu_cores']:.2f}, {u['peak_rss_mb']:.0f}" for n, u in busiest)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    run_dir = Path(".trialstream") / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in args.anomaly_replicas:
        print(f"anomaly replicas: {n} ...", file=sys.stderr, flush=True)
        runs.append(run_once(args, n, run_dir))
    result = {"config": vars(args), "runs": runs}
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print()
    print(
        f"services: {' '.join(args.services)}; ingest replicas: {args.ingest_replicas}; "
        f"archive prefilled with {args.prefill_readings:,} readings"
    )
    print(table(runs))
    for run in runs:
        r = run["reads"]
        print(
            f"reads (anomaly replicas {run['anomaly_replicas']}): GET .../readings, "
            f"{r['read_readings_per_request']:,} readings a request: p50 {r['read_p50_ms']} ms, "
            f"p95 {r['read_p95_ms']} ms, {r['read_us_per_reading']} us per reading"
        )


if __name__ == "__main__":
    main()

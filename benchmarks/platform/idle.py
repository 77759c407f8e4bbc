"""`python -m benchmarks.platform.idle`: what the whole platform costs doing nothing.

Starts every service (one replica each) on the embedded broker and database, as `make run`
does, waits until all are ready and 10 s more, then samples each process's CPU time over
`--seconds` with nothing sent. Every consumer group polls and heartbeats, every outbox relay
asks its database, whether or not anything comes: on 2 cores that cost is taken from the
readings (decision 0095).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from trialstream.services import discover_services
from trialstream.supervisor import Infrastructure, Supervisor, child_env, run_prepare

from benchmarks.platform.load import ADMIN, staff_env
from benchmarks.platform.resources import ResourceSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    run_dir = Path(".trialstream") / "bench-idle"
    run_dir.mkdir(parents=True, exist_ok=True)
    services = discover_services(None)
    infra = Infrastructure.resolve(env, run_dir)
    supervisor = Supervisor(
        child_env(infra, ADMIN) | staff_env() | {"TRIALSTREAM_LOG_LEVEL": "WARNING"},
        run_dir,
        restart=False,
        own_database_logins=infra.embedded_postgres is not None,
    )
    try:
        run_prepare(infra, services, 6)
        for info in services:
            supervisor.spawn_service(info, 0)
        supervisor.wait_ready()
        time.sleep(10)
        pids = {c.name: c.process.pid for c in supervisor.children}
        if infra.embedded_kafka and infra.embedded_kafka.process:
            pids["broker (Tansu)"] = infra.embedded_kafka.process.pid
        if infra.embedded_postgres and infra.embedded_postgres.process:
            pids["PostgreSQL"] = infra.embedded_postgres.process.pid  # with its backends
        with ResourceSampler(pids) as sampler:
            time.sleep(args.seconds)
        used = sampler.cores()
        supervisor.check_alive()
    finally:
        supervisor.stop_all()
        infra.stop()
    for name, cores in used.items():
        print(f"{name:20s} {cores:.3f} cores")
    print(f"{'total':20s} {sum(used.values()):.3f} cores, idle for {args.seconds:g} s")


if __name__ == "__main__":
    main()

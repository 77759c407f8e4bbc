"""Faults as a test: a counting harness against `trialstream up` (README, Guarantees).

Devices upload a stream (quiet hours, then a sustained tachycardia, then recovery) while
ingest, anomaly and monitoring are killed with SIGKILL (the supervisor restarts them),
every PostgreSQL connection is terminated, and the broker is frozen (SIGSTOP) and thawed.
A device retries what was not acknowledged with the same event ids, as the README tells
it to. Counted at the end: every acknowledged reading archived exactly once, every
participant's episode alerted exactly once (one alert id, one inbox entry), and no answer
5xx other than 503.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from helpers import heart_rate_minutes, read_topic
from platform_up import (
    INGEST,
    MONITORING,
    Platform,
    enrol_fleet,
    signed_in,
    up_platform,
    wait_for,
)
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ADMIN = "faults-admin-token"
PARTICIPANTS = 10
QUIET, EPISODE, RECOVERY = 60, 15, 20  # minutes of readings, one a minute
CHUNK = 5  # readings per upload


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    yield from up_platform(
        tmp_path_factory.mktemp("faults"),
        ["--no-simulate"],
        {"TRIALSTREAM_ADMIN_TOKEN": ADMIN},
    )


class Device:
    """One participant's watch: uploads in order, retrying an upload until acknowledged."""

    def __init__(self, pid: str, device: str, token: str, start: datetime) -> None:
        self.pid, self.device = pid, device
        self.auth = {"Authorization": f"Bearer {token}"}
        values = (
            [64.0 + i % 5 for i in range(QUIET)]
            + [136.0 + i % 4 for i in range(EPISODE)]
            + [66.0 + i % 3 for i in range(RECOVERY)]
        )
        self.readings = heart_rate_minutes(pid, device, start, values)
        self.sent = 0

    def upload_next(self, client: httpx.Client, statuses: Counter[str]) -> list[str]:
        """Upload the next chunk until it is acknowledged; return its acknowledged ids."""
        chunk = self.readings[self.sent : self.sent + CHUNK]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                r = client.post(
                    f"{INGEST}/v1/readings", headers=self.auth, json={"readings": chunk}
                )
            except httpx.TransportError as exc:  # ingest killed, restarting
                statuses[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            statuses[str(r.status_code)] += 1
            if r.status_code == 200:
                body = r.json()
                assert body["accepted"] + body["duplicates"] == len(chunk), r.text
                self.sent += len(chunk)
                return [str(x["event_id"]) for x in chunk]
            assert r.status_code in (429, 503), f"{r.status_code}: {r.text}"
            time.sleep(float(r.headers.get("Retry-After", "1")))
        raise AssertionError(f"{self.pid}: an upload was not acknowledged within 120 s")

    @property
    def done(self) -> bool:
        return self.sent >= len(self.readings)


def _broker_pid(kafka: str) -> int:
    """The embedded broker (Tansu) serving `kafka` (host:port), from /proc."""
    port = kafka.rpartition(":")[2]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        named_tansu = argv and b"tansu" in argv[0].rpartition(b"/")[2]
        if named_tansu and any(a.endswith(b":" + port.encode()) for a in argv):
            return int(entry.name)
    raise AssertionError(f"no broker process listening on {kafka}")


def _freeze(pid: int, seconds: float) -> threading.Thread:
    def run() -> None:
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=run, name="freeze-broker")
    thread.start()
    return thread


async def _terminate_connections(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        )
    finally:
        await conn.close()


async def _archived(database_url: str, ids: list[str]) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM ingest.readings"
            " WHERE event_id = ANY($1::uuid[])",
            ids,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["n"]), int(row["d"])


def test_acknowledged_readings_and_alerts_survive_kills_cut_connections_and_a_frozen_broker(
    platform: Platform,
) -> None:
    run = uuid.uuid4().hex[:6]
    database_url, kafka = platform.banner("PostgreSQL"), platform.banner("Kafka")
    start = datetime.now(UTC) - timedelta(hours=3)
    statuses: Counter[str] = Counter()
    acknowledged: list[str] = []
    with httpx.Client(timeout=30) as client:
        devices = [
            Device(pid, device, token, start)
            for pid, device, token in enrol_fleet(
                client, ADMIN, f"fault-{run}", "site-faults", PARTICIPANTS
            )
        ]

        rounds = (QUIET + EPISODE + RECOVERY) // CHUNK
        faults = {
            3: lambda: os.kill(platform.pid_of("ingest-0"), signal.SIGKILL),
            6: lambda: os.kill(platform.pid_of("anomaly-0"), signal.SIGKILL),
            9: lambda: asyncio.run(_terminate_connections(database_url)),
            12: lambda: _freeze(_broker_pid(kafka), 4.0),
            14: lambda: os.kill(platform.pid_of("monitoring-0"), signal.SIGKILL),
            16: lambda: os.kill(platform.pid_of("anomaly-0"), signal.SIGKILL),
        }
        threads = []
        for round_no in range(rounds):
            if round_no in faults:
                done = faults[round_no]()
                if isinstance(done, threading.Thread):
                    threads.append(done)
            for device in devices:
                acknowledged += device.upload_next(client, statuses)
        for thread in threads:
            thread.join()
        assert all(d.done for d in devices)

    felt = statuses["ConnectError"] + statuses["ReadError"] + statuses["RemoteProtocolError"]
    assert felt > 0, f"the ingest kill was never felt by a device: {statuses}"
    server_errors = {s: n for s, n in statuses.items() if s.startswith("5") and s != "503"}
    assert server_errors == {}, f"answers other than 503 among the 5xx: {statuses}"
    expected = PARTICIPANTS * (QUIET + EPISODE + RECOVERY)
    assert len(acknowledged) == len(set(acknowledged)) == expected

    # Every acknowledged reading archived exactly once.
    counts = wait_for(
        "every acknowledged reading archived",
        lambda: (
            c if (c := asyncio.run(_archived(database_url, acknowledged)))[1] == expected else None
        ),
        timeout=60,
        last=lambda: asyncio.run(_archived(database_url, acknowledged)),
    )
    assert counts == (expected, expected)

    # Every episode alerted exactly once: one alert id per participant, and it ended.
    ours = {d.pid for d in devices}

    def on(topic: Topic) -> list[dict[str, Any]]:
        return asyncio.run(
            read_topic(kafka, topic, match=lambda e: e.get("participant_id") in ours)
        )

    def all_alerted() -> list[dict[str, Any]] | None:
        found = on(Topic.ALERTS)
        ended = {e["participant_id"] for e in on(Topic.ALERT_EPISODES_ENDED)}
        return found if {a["participant_id"] for a in found} == ours == ended else None

    wait_for(
        "every participant's episode alerted and ended",
        all_alerted,
        timeout=120,
        last=lambda: sorted(ours - {a["participant_id"] for a in on(Topic.ALERTS)}),
    )
    time.sleep(3)  # a late duplicate would have arrived by now
    ids = Counter(
        a["participant_id"] for a in {a["event_id"]: a for a in on(Topic.ALERTS)}.values()
    )
    assert ids == dict.fromkeys(ours, 1), f"alert ids per participant: {ids}"

    with httpx.Client(timeout=30) as client:
        token = signed_in(client, ADMIN, f"nurse-{run}", "site-faults", "site_staff")
        wait_for(
            "monitoring back after its kill",
            lambda: client.get(f"{MONITORING}/healthz").status_code == 200,
            timeout=60,
        )
        auth = {"Authorization": f"Bearer {token}"}

        def inbox() -> list[str] | None:
            r = client.get(f"{MONITORING}/v1/alerts", params={"status": "all"}, headers=auth)
            found = [a["participant_id"] for a in r.json()["alerts"]]
            return found if set(found) == ours else None

        assert sorted(wait_for("every alert in the inbox", inbox, timeout=60)) == sorted(ours)
    restarted = [line for line in platform.more_output() if "restart" in line.lower()]
    assert len(restarted) >= 4, f"the supervisor did not report the restarts: {restarted}"

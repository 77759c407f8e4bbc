"""Scaling proof: `trialstream up --scale anomaly=3` splits the readings partitions over
three processes; one is killed (SIGKILL, no goodbye) in the middle of the stream and the
other two take its partitions over. Nothing is lost: every participant's episode alerts
and ends. Nothing is doubled: one alert id per episode, one alert per participant in the
staff inbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
ADMIN = "scale-admin-token"
ANOMALY_METRICS = [f"http://127.0.0.1:{8003 + 10 * i}/metrics" for i in range(3)]
PARTITIONS = 6
PARTICIPANTS = 24
ASSIGNED = re.compile(
    r'^trialstream_consumer_assigned_partitions\{group="anomaly",'
    r'topic="trialstream\.readings\.v1"\} (\S+)$',
    re.MULTILINE,
)
LAG = re.compile(
    r'^trialstream_consumer_lag\{group="anomaly",partition="\d+",'
    r'topic="trialstream\.readings\.v1"\} (\S+)$',
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    yield from up_platform(
        tmp_path_factory.mktemp("scale"),
        ["--scale", "anomaly=3", "--no-simulate", "--no-restart"],
        {"TRIALSTREAM_ADMIN_TOKEN": ADMIN, "TRIALSTREAM_TOPIC_PARTITIONS": str(PARTITIONS)},
    )


def _assigned(client: httpx.Client, url: str) -> float:
    match = ASSIGNED.search(client.get(url).text)
    return float(match.group(1)) if match else 0.0


def test_killing_one_of_three_anomaly_replicas_loses_and_doubles_nothing(
    platform: Platform,
) -> None:
    run = uuid.uuid4().hex[:6]
    start = datetime.now(UTC) - timedelta(hours=2, minutes=40)
    normal = [64.0 + (i % 5) for i in range(90)]
    episode = [136.0 + (i % 4) for i in range(20)] + [66.0 + (i % 3) for i in range(20)]
    with httpx.Client(timeout=30) as client:
        # Three replicas, each owning part of the readings topic.
        owned = wait_for(
            "partitions split over three replicas",
            lambda: (
                counts
                if sum(counts := [_assigned(client, u) for u in ANOMALY_METRICS]) == PARTITIONS
                and min(counts) > 0
                else None
            ),
        )
        assert owned == [2.0, 2.0, 2.0]

        fleet = [
            (pid, device, {"Authorization": f"Bearer {token}"})
            for pid, device, token in enrol_fleet(
                client, ADMIN, f"scale-{run}", "site-scale", PARTICIPANTS
            )
        ]

        for pid, device, auth in fleet:  # 90 quiet minutes: a history to lose
            r = client.post(
                f"{INGEST}/v1/readings",
                headers=auth,
                json={"readings": heart_rate_minutes(pid, device, start, normal)},
            )
            assert r.json()["accepted"] == len(normal), r.text

        episode_start = start + timedelta(minutes=len(normal))
        victim = next(
            p
            for p in json.loads((platform.run_dir / "processes.json").read_text())
            if p["name"] == "anomaly-1"
        )
        for n, (pid, device, auth) in enumerate(fleet):
            if n == PARTICIPANTS // 2:
                os.kill(victim["pid"], signal.SIGKILL)  # mid-stream, mid-batch perhaps
            r = client.post(
                f"{INGEST}/v1/readings",
                headers=auth,
                json={"readings": heart_rate_minutes(pid, device, episode_start, episode)},
            )
            assert r.json()["accepted"] == len(episode), r.text

        # The survivors own every partition between them.
        survivors = [ANOMALY_METRICS[0], ANOMALY_METRICS[2]]
        wait_for(
            "the two survivors own all partitions",
            lambda: sum(_assigned(client, u) for u in survivors) == PARTITIONS,
        )

    ours = {pid for pid, _, _ in fleet}

    def ours_on(topic: Topic) -> list[dict[str, Any]]:
        return asyncio.run(
            read_topic(
                platform.banner("Kafka"), topic, match=lambda e: e.get("participant_id") in ours
            )
        )

    def alerts_and_ends() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return ours_on(Topic.ALERTS), ours_on(Topic.ALERT_EPISODES_ENDED)

    def missing() -> str:
        alerts, ends = alerts_and_ends()
        unalerted = ours - {a["participant_id"] for a in alerts}
        unended = ours - {e["participant_id"] for e in ends}
        return f"{len(unalerted)} without an alert, {len(unended)} without an episode end"

    complete, deadline = "0 without an alert, 0 without an episode end", time.monotonic() + 120
    while (gap := missing()) != complete and time.monotonic() < deadline:
        time.sleep(1)
    if gap != complete:
        unalerted = sorted(ours - {a["participant_id"] for a in alerts_and_ends()[0]})
        trail = asyncio.run(_where_alerts_stopped(platform.banner("PostgreSQL"), unalerted))
        raise AssertionError(f"after the kill, of {PARTICIPANTS} participants: {gap}\n{trail}")
    time.sleep(3)  # a late duplicate would have arrived by now
    alerts, ends = alerts_and_ends()

    # At-least-once: a replica killed between the broker's ack and marking its outbox rows
    # sent has them re-sent by a survivor, with the same event_id. So "no duplicate alert"
    # means one alert id per episode, and one alert per participant in the staff inbox.
    ids = {pid: {a["event_id"] for a in alerts if a["participant_id"] == pid} for pid in ours}
    doubled = {pid: sorted(found) for pid, found in ids.items() if len(found) != 1}
    assert doubled == {}, f"participants without exactly one alert id: {doubled}"
    assert {a["metric"] for a in alerts} == {"heart-rate"}
    assert len({e["event_id"] for e in ends}) == PARTICIPANTS
    with httpx.Client(timeout=30) as client:
        token = signed_in(client, ADMIN, f"nurse-{run}", "site-scale", "site_staff")
        auth = {"Authorization": f"Bearer {token}"}

        def inbox() -> list[str] | None:
            r = client.get(f"{MONITORING}/v1/alerts", params={"status": "all"}, headers=auth)
            found = [a["participant_id"] for a in r.json()["alerts"]]
            return found if len(set(found)) == PARTICIPANTS else None

        assert sorted(wait_for("every alert in the inbox", inbox)) == sorted(ours)

        # What an autoscaler reads: the survivors report their lag for every partition, now 0.
        # A partition that moved in once the stream was quiet never had a batch; the gauge
        # is re-read every TRIALSTREAM_LAG_REFRESH_SECONDS (5 s) for it.
        def lags() -> list[float]:
            return [float(v) for u in survivors for v in LAG.findall(client.get(u).text)]

        def caught_up() -> list[float] | None:
            found = lags()
            return found if len(found) == PARTITIONS and sum(found) == 0 else None

        wait_for("lag 0 reported for all six partitions", caught_up, timeout=30, last=lags)
    assert any(
        "anomaly-1 exited with code -9; not restarted" in line for line in platform.more_output()
    )


async def _where_alerts_stopped(database_url: str, participants: list[str]) -> str:
    """For a failure report: each participant's alert rows and their outbox rows."""
    conn = await asyncpg.connect(database_url)
    try:
        alerts = await conn.fetch(
            "SELECT participant_id, event_id, rule, detected_at FROM anomaly.alerts"
            " WHERE participant_id = ANY($1::text[])",
            participants,
        )
        outbox = await conn.fetch(
            "SELECT key, topic, sent_at FROM anomaly.outbox WHERE key = ANY($1::text[])",
            participants,
        )
    finally:
        await conn.close()
    return f"alert rows: {[dict(r) for r in alerts]}\noutbox rows: {[dict(r) for r in outbox]}"

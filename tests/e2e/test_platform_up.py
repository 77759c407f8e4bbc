"""End to end: `trialstream up` as a user runs it, driven over HTTP only.

Starts the real command (embedded broker and database, every service as its own
process), enrols a participant, device and nurse, uploads a sustained tachycardia,
sees the alert in the nurse's inbox, acknowledges it, then stops with Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import exclusive
from trialstream.lifetime import tied_to_parent

pytestmark = pytest.mark.integration
ADMIN = "e2e-admin-token"
INGEST, MONITORING = "http://127.0.0.1:8001", "http://127.0.0.1:8002"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    # `trialstream up` listens on fixed ports: one platform at a time on this machine.
    with exclusive("trialstream-up-ports"):
        yield from _started_platform(tmp_path_factory)


def _started_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    workdir = tmp_path_factory.mktemp("up")
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["TRIALSTREAM_ADMIN_TOKEN"] = ADMIN
    trialstream = Path(sys.executable).with_name("trialstream")
    process = subprocess.Popen(
        [str(trialstream), "up", "--no-simulate"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=tied_to_parent(),  # a killed test run takes the platform with it
    )
    try:
        _wait_for_banner(process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_banner(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError("trialstream up exited early:\n" + "".join(seen))
        seen.append(line)
        if "Ctrl-C stops everything" in line:
            return
    raise AssertionError("trialstream up did not come up:\n" + "".join(seen))


def _post(client: httpx.Client, url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def test_abnormal_readings_become_an_alert_staff_can_acknowledge(
    platform: subprocess.Popen[str],
) -> None:
    suffix = uuid.uuid4().hex[:6]
    participant, device, site = f"P-e2e-{suffix}", f"watch-{suffix}", f"site-{suffix}"
    with httpx.Client(timeout=30) as client:
        _post(
            client,
            f"{INGEST}/v1/admin/participants",
            ADMIN,
            {"participant_id": participant, "site_id": site},
        )
        device_token = _post(
            client,
            f"{INGEST}/v1/admin/devices",
            ADMIN,
            {"device_id": device, "participant_id": participant},
        )["token"]
        nurse = _post(
            client,
            f"{MONITORING}/v1/admin/staff",
            ADMIN,
            {"staff_id": f"nurse-{suffix}", "site_id": site, "role": "site_staff"},
        )["token"]
        start = datetime.now(UTC) - timedelta(minutes=30)
        readings = [
            {
                "event_id": str(uuid.uuid4()),
                "participant_id": participant,
                "device_id": device,
                "metric": "heart-rate",
                "value": v,
                "unit": "beats/min",
                "measured_at": (start + timedelta(minutes=i)).isoformat(),
            }
            for i, v in enumerate([70, 71, 140, 139, 141, 142, 140, 143, 138, 72])
        ]
        result = _post(client, f"{INGEST}/v1/readings", device_token, {"readings": readings})
        assert result["accepted"] == 10

        alerts: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not alerts and time.monotonic() < deadline:
            r = client.get(
                f"{MONITORING}/v1/alerts",
                params={"status": "open"},
                headers={"Authorization": f"Bearer {nurse}"},
            )
            assert r.status_code == 200, r.text
            alerts = [a for a in r.json()["alerts"] if a["participant_id"] == participant]
            time.sleep(0.3)
        assert len(alerts) == 1, "one sustained episode must give exactly one alert"
        alert = alerts[0]
        assert alert["metric"] == "heart-rate"
        assert "beats/min" in alert["explanation"]

        acked = _post(
            client,
            f"{MONITORING}/v1/alerts/{alert['alert_id']}/acknowledge",
            nurse,
            {"note": "called participant; resting; recheck in 1 h"},
        )
        assert acked["status"] == "acknowledged"

        # Every reading reached the archive, the single artefact-like sample included.
        def archived() -> int:
            r = client.get(
                f"{INGEST}/v1/participants/{participant}/readings",
                params={"from": (start - timedelta(minutes=1)).isoformat()},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            return len(r.json()["readings"])

        deadline = time.monotonic() + 30
        while archived() < 10 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert archived() == 10


def test_ctrl_c_stops_every_process_cleanly(platform: subprocess.Popen[str]) -> None:
    platform.send_signal(signal.SIGINT)
    assert platform.wait(60) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{INGEST}/healthz", timeout=2)

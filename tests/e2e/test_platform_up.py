"""End to end: `trialstream up` as a user runs it, driven over HTTP only.

Starts the real command (embedded broker and database, every service as its own
process), enrols a participant, device and nurse, uploads a sustained tachycardia,
sees the alert in the nurse's inbox, acknowledges it, then stops with Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from helpers import heart_rate_minutes
from platform_up import INGEST, MONITORING, signed_in, up_platform

pytestmark = pytest.mark.integration
ADMIN = "e2e-admin-token"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    for up in up_platform(
        tmp_path_factory.mktemp("up"), ["--no-simulate"], {"TRIALSTREAM_ADMIN_TOKEN": ADMIN}
    ):
        yield up.process


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
        # the admin token only bootstraps the identity service: an admin signs in
        admin = signed_in(client, ADMIN, f"admin-{suffix}", None, "platform_admin")
        _post(
            client,
            f"{INGEST}/v1/admin/participants",
            admin,
            {"participant_id": participant, "site_id": site},
        )
        device_token = _post(
            client,
            f"{INGEST}/v1/admin/devices",
            admin,
            {"device_id": device, "participant_id": participant},
        )["token"]
        nurse = signed_in(client, ADMIN, f"nurse-{suffix}", site, "site_staff")
        start = datetime.now(UTC) - timedelta(minutes=30)
        readings = heart_rate_minutes(
            participant, device, start, [70, 71, 140, 139, 141, 142, 140, 143, 138, 72]
        )
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
                headers={"Authorization": f"Bearer {admin}"},
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

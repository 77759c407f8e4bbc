"""End to end in a real browser: Debian's chromium driven by Playwright against ingest,
anomaly and monitoring on the real broker and database.

A nurse logs in with her staff token, readings uploaded through ingest become an alert
that appears in her open feed without a reload (Server-Sent Events), she acknowledges it
from the page and the alert's audit view shows the acknowledgement. Screenshots go to
the test's temporary folder, or to docs/screenshots/ with TRIALSTREAM_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from anomaly.main import create_app as anomaly_app
from anomaly.settings import AnomalySettings
from helpers import eventually, heart_rate_minutes
from identity.main import create_app as identity_app
from identity.settings import IdentitySettings
from ingest.main import create_app as ingest_app
from ingest.settings import IngestSettings
from monitoring.main import create_app as monitoring_app
from monitoring.settings import MonitoringSettings
from playwright.async_api import Browser, Page, async_playwright, expect
from servers import tcp_server
from trialstream.embedded import free_port

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
ADMIN = "e2e-dashboard-admin"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; installed with apt-get when missing and we may (root)."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, check=False, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=False, capture_output=True)
            subprocess.run(install, env=env, check=False, capture_output=True)
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is missing and could not be installed (needs root + apt)")
    return CHROMIUM


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.environ.get("TRIALSTREAM_UPDATE_SCREENSHOTS") == "1":
        yield REPO / "docs" / "screenshots"
    else:
        yield tmp_path_factory.mktemp("screenshots")


@dataclass
class Platform:
    ingest: str
    monitoring: str
    identity: str
    http: httpx.AsyncClient

    async def post(self, url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    async def enrol(self, participant: str, device: str, site: str) -> str:
        """Enrol a participant at `site` with one device, as a platform admin signed in at
        the issuer (the admin token only bootstraps it); the device's upload token."""
        subject, password = f"admin-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        body = {
            "subject": subject,
            "name": "Platform Admin",
            "password": password,
            "grants": [{"role": "platform_admin"}],
        }
        await self.post(f"{self.identity}/v1/people", ADMIN, body)
        signed_in = await self.http.post(
            f"{self.identity}/v1/token",
            json={"grant_type": "password", "username": subject, "password": password},
        )
        admin = str(signed_in.json()["access_token"])
        await self.post(
            f"{self.ingest}/v1/admin/participants",
            admin,
            {"participant_id": participant, "site_id": site},
        )
        device_body = {"device_id": device, "participant_id": participant}
        return (await self.post(f"{self.ingest}/v1/admin/devices", admin, device_body))["token"]

    async def person(self, subject: str, password: str, role: str, site: str) -> None:
        """A staff member at the identity issuer (created with the bootstrap admin token)."""
        grant = {"role": role, "study": "default", "site": site}
        body = {
            "subject": subject,
            "name": f"Nurse {subject}",
            "password": password,
            "grants": [grant],
        }
        await self.post(f"{self.identity}/v1/people", ADMIN, body)


@pytest.fixture
async def platform(kafka: str, database_url: str) -> AsyncIterator[Platform]:
    issuer_port = free_port()
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database_url,
        "admin_token": ADMIN,
        "kafka_session_timeout_ms": 2000,
        "oidc_issuer": f"http://127.0.0.1:{issuer_port}",
    }
    async with AsyncExitStack() as stack:
        identity = await stack.enter_async_context(
            tcp_server(identity_app(IdentitySettings(**common)), issuer_port)
        )
        # High-severity alerts are due at once here, so the page shows overdue and escalation.
        settings = MonitoringSettings(
            **common, ack_deadline_high_minutes=0, escalation_check_seconds=0.5
        )
        monitoring = await stack.enter_async_context(tcp_server(monitoring_app(settings)))
        await stack.enter_async_context(tcp_server(anomaly_app(AnomalySettings(**common))))
        ingest = await stack.enter_async_context(tcp_server(ingest_app(IngestSettings(**common))))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        yield Platform(ingest, monitoring, identity, http)


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            await browser.close()


def tachycardia(participant: str, device: str) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(minutes=30)
    values = [70, 71, 72, 140, 139, 141, 142, 140, 143, 138, 141, 74]
    return heart_rate_minutes(participant, device, start, values)


async def log_in(page: Page, base: str, name: str, password: str) -> None:
    await page.goto(f"{base}/dashboard")
    await expect(page).to_have_url(f"{base}/dashboard/login")
    await page.fill("#username", name)
    await page.fill("#password", password)
    await page.click("#login")
    await expect(page.locator("body")).to_have_attribute("data-live", "connected")


async def test_nurse_sees_a_new_alert_live_acknowledges_it_and_the_audit_shows_it(
    platform: Platform, browser: Browser, screenshots: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    participant, device, site = f"P-ui-{suffix}", f"watch-{suffix}", f"site-{suffix}"
    staff_id = f"nurse-{suffix}"
    device_token = await platform.enrol(participant, device, site)
    password = uuid.uuid4().hex
    await platform.person(staff_id, password, "site_staff", site)
    signed_in = await platform.http.post(
        f"{platform.identity}/v1/token",
        json={"grant_type": "password", "username": staff_id, "password": password},
    )
    nurse = signed_in.json()["access_token"]

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await log_in(page, platform.monitoring, staff_id, password)
    await expect(page.locator(".empty")).to_be_visible()
    await page.evaluate("window.loadedOnce = true")  # a reload would drop this

    uploaded = await platform.post(
        f"{platform.ingest}/v1/readings",
        device_token,
        {"readings": tachycardia(participant, device)},
    )
    assert uploaded["accepted"] == 12

    episode = page.locator(f"article.episode:has-text('{participant}')")
    await expect(episode).to_be_visible(timeout=60_000)
    alert = episode.locator(".alert").first
    await expect(alert.locator(".explanation")).to_contain_text("beats/min")
    await expect(alert.locator(".overdue-badge")).to_be_visible()
    await expect(alert.locator(".badge.escalated")).to_be_visible()  # pushed live as well
    assert await page.evaluate("window.loadedOnce === true"), "the page reloaded"
    await page.screenshot(path=str(screenshots / "dashboard-feed.png"), full_page=True)

    await alert.locator("input.note").fill("called participant; resting; recheck in 1 h")
    await alert.locator("button[data-action=acknowledge]").click()
    acknowledged = page.locator(".alert[data-status=acknowledged]")
    await expect(acknowledged).to_have_count(1)
    await acknowledged.locator("button[data-action=audit]").click()
    entry = acknowledged.locator(".audit li[data-action='alert.acknowledged']")
    await expect(entry).to_contain_text(staff_id)
    await expect(entry).to_contain_text("open → acknowledged")
    await expect(entry).to_contain_text("recheck in 1 h")
    await expect(acknowledged.locator(".audit li[data-action='alert.escalated']")).to_be_visible()
    assert await page.evaluate("window.loadedOnce === true"), "the page reloaded"
    await page.screenshot(path=str(screenshots / "dashboard-acknowledged.png"), full_page=True)

    await episode.locator("a.participant").click()
    await expect(page.locator("#charts")).to_have_attribute("data-state", "loaded")
    await page.select_option("#range", "1")
    await expect(page.locator("figure.chart[data-metric=heart-rate]")).to_be_visible()
    await expect(page.locator("#alerts")).to_contain_text("acknowledged")
    await page.screenshot(path=str(screenshots / "participant-timeline.png"), full_page=True)
    # The KRI panel and flag list read monitoring's real KRI and flag endpoints. A second
    # participant's watch uploads one reading from three days ago: its clock is behind, a
    # discrepancy flag the list must show.
    late, late_device = f"P-ui2-{suffix}", f"watch2-{suffix}"
    late_token = await platform.enrol(late, late_device, site)
    old = tachycardia(late, late_device)[:1]
    old[0]["measured_at"] = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    await platform.post(f"{platform.ingest}/v1/readings", late_token, {"readings": old})

    async def flagged() -> list[Any]:
        r = await platform.http.get(
            f"{platform.monitoring}/v1/flags", headers={"Authorization": f"Bearer {nurse}"}
        )
        return list(r.json()["flags"])

    await eventually(flagged, timeout=60)
    await page.goto(f"{platform.monitoring}/dashboard")
    await expect(page.locator("tr[data-kri=wear_time] .light")).to_be_visible()
    await expect(page.locator("tr[data-kri=ack_median]")).to_be_visible()
    await expect(page.locator("#flags li")).to_contain_text("the device clock is behind")
    await page.screenshot(path=str(screenshots / "dashboard-feed-kris.png"), full_page=True)
    # Logging out ends the session at the issuer: the cookie's token stops working on the
    # API too (every service follows the staff-access topic), not only in this browser.
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "trialstream_staff"]
    session = {"Authorization": f"Bearer {cookie['value']}"}
    assert (
        await platform.http.get(f"{platform.monitoring}/v1/me", headers=session)
    ).status_code == 200
    await page.click("form.logout button")
    await expect(page).to_have_url(f"{platform.monitoring}/dashboard/login")

    async def refused() -> bool:
        r = await platform.http.get(f"{platform.monitoring}/v1/me", headers=session)
        return r.status_code == 401 and r.json()["error"]["code"] == "session_ended"

    await eventually(refused, timeout=30)

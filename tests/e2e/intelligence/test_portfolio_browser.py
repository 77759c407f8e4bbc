"""End to end in a real browser: Debian's chromium driven by Playwright against the
monitoring and intelligence services on the real broker and database.

A sponsor signs in at the staff dashboard (monitoring's `/dashboard/login`, an access
token pasted), and the session cookie it sets on the host opens the portfolio page the
intelligence service serves on another port: the lagging site's light is red, the drill-
down shows its figures, and no participant id is on either page. The early-warning
lights (decision 0090) come from a KRI snapshot and a retention-risk summary put on their
topics as monitoring and retention publish them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from helpers import eventually, publish_to
from intelligence.main import create_app as intelligence_app
from intelligence.settings import IntelligenceSettings
from monitoring.main import create_app as monitoring_app
from monitoring.settings import MonitoringSettings
from playwright.async_api import Browser, async_playwright, expect
from servers import tcp_server
from staff_tokens import JWKS, staff_auth
from trialstream.events.monitoring import KriReading, KriThreshold, SiteKriSnapshot
from trialstream.events.retention_risk import RetentionRiskSummary
from trialstream.events.topics import Topic

from tests.integration.intelligence.enrolments import enrolled_study

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        subprocess.run(install, env=env, check=False, capture_output=True)
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is missing and could not be installed (needs root + apt)")
    return CHROMIUM


@pytest.fixture
async def services(kafka: str, database_url: str) -> AsyncIterator[tuple[str, str]]:
    common = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database_url,
        "kafka_session_timeout_ms": 2000,
        "oidc_jwks": JWKS,
    }
    async with AsyncExitStack() as stack:
        monitoring = await stack.enter_async_context(
            tcp_server(monitoring_app(MonitoringSettings(**common)))
        )
        intelligence = await stack.enter_async_context(
            tcp_server(intelligence_app(IntelligenceSettings(**common)))
        )
        yield monitoring, intelligence


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


async def test_a_sponsor_signed_in_at_the_dashboard_sees_the_portfolio_with_its_lights(
    services: tuple[str, str], browser: Browser, kafka: str
) -> None:
    monitoring, intelligence = services
    sites = ["site-a", "site-b", "site-c", "site-lag"]
    study, participants = await enrolled_study(
        kafka, dict(zip(sites, [20, 16, 18, 0], strict=True))
    )
    auth = staff_auth(None, "sponsor", study=study)

    async def counted() -> bool:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{intelligence}/v1/portfolio", headers=auth)
        studies = r.json().get("studies") if r.status_code == 200 else None
        return bool(studies) and studies[0]["enrolled"] == 54

    await eventually(counted, timeout=60)
    await publish_to(kafka, Topic.KRI_SNAPSHOTS, [snapshot(study, "site-a")])
    await publish_to(kafka, Topic.RETENTION_RISK, [risk_summary(study, "site-a")])

    async def lit() -> bool:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{intelligence}/v1/portfolio", headers=auth)
        site_a = next(s for s in r.json()["studies"][0]["sites"] if s["site_id"] == "site-a")
        w = site_a["early_warning"]
        return bool(w["data_completeness"]["as_of"] and w["retention_risk"]["as_of"])

    await eventually(lit, timeout=60)

    page = await browser.new_page()
    await page.goto(f"{monitoring}/dashboard/login")
    await page.click("summary")
    await page.fill("#token", auth["Authorization"].removeprefix("Bearer "))
    await page.click("text=Use this token")
    await page.goto(f"{intelligence}/portfolio")
    lagging = page.locator('tr[data-site="site-lag"]')
    await expect(lagging.locator(".below-forecast .light")).to_have_text("red")
    # the early-warning lights: site-a's from the snapshots, the lagging site's unknown
    site_a = page.locator('tr[data-site="site-a"]')
    await expect(site_a.locator("td.ew.data_completeness .light")).to_have_text("red")
    await expect(site_a.locator("td.ew.alert_load")).to_contain_text("3 open alerts, 1 flags")
    await expect(site_a.locator("td.ew.time_to_acknowledge .light")).to_have_text("amber")
    await expect(site_a.locator("td.ew.retention_risk .light")).to_have_text("green")
    await expect(lagging.locator("td.ew.retention_risk")).to_contain_text("no snapshot yet")
    await expect(page.locator(f"#study-{study} .enrolled")).to_have_text("54")
    await expect(page.locator("svg circle.enrolled-dot")).to_have_count(4)
    content = await page.content()
    assert not any(p in content for p in participants)

    await page.click('tr[data-site="site-a"] a')
    await expect(page.locator(".site-detail .enrolled")).to_have_text("20")
    await expect(page.locator("tr.ew.data_completeness")).to_contain_text("42.5 %")
    await expect(page.locator("tr.ew.retention_risk")).to_contain_text("1 of 10 scored")
    content = await page.content()
    assert not any(p in content for p in participants)


def snapshot(study: str, site: str) -> tuple[str, SiteKriSnapshot]:
    """What monitoring's evaluation publishes for a site (as its snapshots.py builds it)."""

    def reading(kri: str, value: float, status: str, amber: float, red: float) -> KriReading:
        direction = "above" if kri == "ack_median" else "below"
        threshold = KriThreshold(amber=amber, red=red, direction=direction)
        return KriReading(
            kri=kri, label=kri, value=value, unit="%", threshold=threshold, status=status
        )

    made = SiteKriSnapshot(
        study_id=study,
        site_id=site,
        evaluated_at=datetime.now(UTC),
        window_days=7,
        participants=20,
        kris=(
            reading("wear_time", 42.5, "red", 80.0, 60.0),
            reading("ack_median", 45.0, "amber", 30.0, 60.0),
        ),
        open_alerts=3,
        open_flags=1,
        alerts_in_window=14,
        participant_days=140.0,
    )
    return f"{study}|{site}", made


def risk_summary(study: str, site: str) -> tuple[str, RetentionRiskSummary]:
    made = RetentionRiskSummary(
        study_id=study, site_id=site, scored_at=datetime.now(UTC), model_version="m1",
        participants_scored=10, high_risk=1, high_risk_cutoff=0.3, high_risk_share=0.1,
        mean_risk=0.18,
    )  # fmt: skip
    return f"{study}|{site}", made

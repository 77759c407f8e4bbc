"""End to end in a real browser: Debian's chromium driven by Playwright against the
monitoring and intelligence services on the real broker and database.

A sponsor signs in at the staff dashboard (monitoring's `/dashboard/login`, an access
token pasted), and the session cookie it sets on the host opens the portfolio page the
intelligence service serves on another port: the lagging site's light is red, the drill-
down shows its figures, and no participant id is on either page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from helpers import eventually
from intelligence.main import create_app as intelligence_app
from intelligence.settings import IntelligenceSettings
from monitoring.main import create_app as monitoring_app
from monitoring.settings import MonitoringSettings
from playwright.async_api import Browser, async_playwright, expect
from servers import tcp_server
from staff_tokens import JWKS, staff_auth

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

    page = await browser.new_page()
    await page.goto(f"{monitoring}/dashboard/login")
    await page.click("summary")
    await page.fill("#token", auth["Authorization"].removeprefix("Bearer "))
    await page.click("text=Use this token")
    await page.goto(f"{intelligence}/portfolio")
    lagging = page.locator('tr[data-site="site-lag"]')
    await expect(lagging.locator(".light")).to_have_text("red")
    await expect(page.locator(f"#study-{study} .enrolled")).to_have_text("54")
    await expect(page.locator("svg circle.enrolled-dot")).to_have_count(4)
    content = await page.content()
    assert not any(p in content for p in participants)

    await page.click('tr[data-site="site-a"] a')
    await expect(page.locator(".site-detail .enrolled")).to_have_text("20")
    content = await page.content()
    assert not any(p in content for p in participants)

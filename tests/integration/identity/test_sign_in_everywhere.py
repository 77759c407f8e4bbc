"""One sign-in at the issuer works on another service, which fetches the issuer's keys
over HTTP; a revocation or logout at the issuer reaches that service through the
staff-access topic well within the 60 s promise."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from helpers import eventually, unique_id
from identity.main import create_app as identity_app
from identity.settings import IdentitySettings
from monitoring.main import create_app as monitoring_app
from monitoring.settings import MonitoringSettings
from servers import tcp_server
from trialstream.embedded import free_port

pytestmark = pytest.mark.integration
ADMIN = "everywhere-admin"


@dataclass
class Two:
    issuer: str
    monitoring: str
    http: httpx.AsyncClient

    async def person(self, role: str, site: str | None = "site-e") -> tuple[str, str]:
        subject, password = unique_id("p"), "a long enough password"
        grant: dict[str, Any] = {"role": role, "study": "default"}
        if site:
            grant["site"] = site
        r = await self.http.post(
            f"{self.issuer}/v1/people",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={"subject": subject, "name": subject, "password": password, "grants": [grant]},
        )
        assert r.status_code == 201, r.text
        return subject, password

    async def sign_in(self, subject: str, password: str) -> dict[str, str]:
        r = await self.http.post(
            f"{self.issuer}/v1/token",
            json={"grant_type": "password", "username": subject, "password": password},
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def me(self, auth: dict[str, str]) -> httpx.Response:
        return await self.http.get(f"{self.monitoring}/v1/me", headers=auth)


@pytest.fixture
async def two(kafka: str, database_url: str) -> AsyncIterator[Two]:
    port = free_port()
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database_url,
        "admin_token": ADMIN,
        "kafka_session_timeout_ms": 2000,
        "oidc_issuer": f"http://127.0.0.1:{port}",
    }
    async with AsyncExitStack() as stack:
        issuer = await stack.enter_async_context(
            tcp_server(identity_app(IdentitySettings(**common)), port)
        )
        monitoring = await stack.enter_async_context(
            tcp_server(monitoring_app(MonitoringSettings(**common)))
        )
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        yield Two(issuer, monitoring, http)


async def test_a_sign_in_at_the_issuer_works_on_monitoring_until_revoked(two: Two) -> None:
    subject, password = await two.person("site_staff")
    auth = await two.sign_in(subject, password)

    async def accepted() -> dict[str, Any] | None:
        r = await two.me(auth)
        return r.json() if r.status_code == 200 else None

    me = await eventually(accepted)  # once monitoring has fetched the issuer's keys
    assert (me["staff_id"], me["roles"], me["sites"]) == (subject, ["site_staff"], ["site-e"])

    revoked_at = time.monotonic()
    r = await two.http.post(
        f"{two.issuer}/v1/people/{subject}/revoke",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={"reason": "left the site"},
    )
    assert r.status_code == 204, r.text

    async def refused() -> bool:
        r = await two.me(auth)
        return r.status_code == 401 and r.json()["error"]["code"] == "access_revoked"

    await eventually(refused, timeout=60)
    assert time.monotonic() - revoked_at < 60


async def test_logging_out_ends_the_session_on_monitoring_and_leaves_other_sessions(
    two: Two,
) -> None:
    subject, password = await two.person("monitor", site=None)
    laptop, phone = await two.sign_in(subject, password), await two.sign_in(subject, password)
    await eventually(lambda: _ok(two, laptop))
    r = await two.http.post(f"{two.issuer}/v1/logout", headers=laptop)
    assert r.status_code == 204, r.text

    async def ended() -> bool:
        r = await two.me(laptop)
        return r.status_code == 401 and r.json()["error"]["code"] == "session_ended"

    await eventually(ended, timeout=60)
    assert (await two.me(phone)).status_code == 200


async def _ok(two: Two, auth: dict[str, str]) -> bool:
    return (await two.me(auth)).status_code == 200

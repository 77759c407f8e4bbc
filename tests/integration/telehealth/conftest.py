"""Fixture: a telehealth app on the real broker and a fresh real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from helpers import serving
from staff_tokens import JWKS
from telehealth.main import create_app
from telehealth.settings import TelehealthSettings
from telehealth_harness import ADMIN, VIDEO_BASE, Clock, Telehealth


@pytest.fixture
async def telehealth(kafka: str, database_url: str) -> AsyncIterator[Telehealth]:
    settings = TelehealthSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
        video_base_url=VIDEO_BASE,
        scheduler_interval_seconds=3600,  # tests tick the scheduler themselves
        db_pool_max=20,
    )
    clock = Clock()
    app = create_app(settings, clock=clock)
    async with serving(app) as client:
        th = Telehealth(client, kafka, database_url, clock, app)
        r = await th.admin("PUT", f"/v1/admin/sites/{th.site}", {"timezone": "Europe/Berlin"})
        assert r.status_code == 200, r.text
        yield th

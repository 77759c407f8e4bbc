"""A monitoring app against the real broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from helpers import serving
from monitoring.main import create_app
from monitoring_support import Monitoring, monitoring_settings


@pytest.fixture
async def monitoring(kafka: str, database_url: str) -> AsyncIterator[Monitoring]:
    async with serving(create_app(monitoring_settings(kafka, database_url))) as client:
        yield Monitoring(client, kafka, database_url)

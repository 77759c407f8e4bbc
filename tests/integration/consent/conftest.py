"""The consent service and ingest, for a study that enables the consent module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from consent_support import Platform, platform


@pytest.fixture
async def ts(kafka: str, database_url: str) -> AsyncIterator[Platform]:
    async with platform(kafka, database_url) as p:
        yield p

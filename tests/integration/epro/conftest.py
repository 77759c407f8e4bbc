"""An ePRO app against the real broker and PostgreSQL (scheduler clock driven by the tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from epro.main import create_app
from epro_support import Epro, epro_settings
from helpers import serving


@pytest.fixture
async def epro(kafka: str, database_url: str) -> AsyncIterator[Epro]:
    async with serving(create_app(epro_settings(kafka, database_url))) as client:
        yield Epro(client, kafka, database_url)

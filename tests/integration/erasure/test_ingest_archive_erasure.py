"""Ingest's archive erasure (decision 0086) on real PostgreSQL as the service's role:
a participant's readings leave the attached partitions and the Parquet tier, each
affected file rewritten without them, the manifest's rows, bytes, SHA-256 and checksums
updated so that they match the files again; other participants keep every row."""

from __future__ import annotations

import hashlib
import io
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pyarrow.parquet as pq
import pytest
from ingest import tiering_repository
from ingest.erasure import erase_from_archive, eraser
from ingest.service_info import SERVICE
from ingest.tiering import checksum, checksum_hex
from ingest.tiering_store import TierStore
from trialstream.db import create_pool, migrate
from trialstream.events.erasures import ErasureRequested, LegalBasis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from test_archive_tiering import OLD, STUDY, fill, tierer

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Ingest's schema with six participants of the study (as tiering's tests have)."""
    await migrate(database_url, schema="ingest", directories=[SERVICE.migrations])
    owner = await asyncpg.connect(database_url)
    try:
        await owner.executemany(
            "INSERT INTO ingest.participants (participant_id, site_id, study_id)"
            " VALUES ($1, 's1', $2)",
            [(f"P-{n}", STUDY) for n in range(6)],
        )
    finally:
        await owner.close()
    pool = await create_pool(database_url, schema="ingest", as_service_role=True)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def store(tmp_path: Path) -> TierStore:
    return TierStore(f"file://{tmp_path}/tier")


async def test_a_participant_leaves_every_tier_and_the_manifest_matches_the_files(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    await fill(pool, [0, 15])  # day 0 goes to the tier, day 15 stays in PostgreSQL
    await tierer(pool, store).run_all()
    before = await pool.fetchval("SELECT count(*) FROM readings")
    assert await pool.fetchval("SELECT count(*) FROM readings WHERE participant_id = 'P-2'")

    async with pool.acquire() as conn, conn.transaction():
        erased = await erase_from_archive(conn, store, "P-2", "S-tier")

    assert erased["archive_rows"] == 12
    assert (erased["tier_files_rewritten"], erased["tier_rows"]) == (1, 12)
    assert await pool.fetchval("SELECT count(*) FROM readings") == before - 12
    assert not await pool.fetchval("SELECT count(*) FROM readings WHERE participant_id = 'P-2'")
    tier, files = await tiering_repository.manifest(pool, OLD.date())
    assert tier is not None
    participants: set[str] = set()
    total = 0
    for f in files:
        with store.fs.open(store.full(f["path"]), "rb") as fh:
            data = fh.read()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert len(data) == f["bytes"]
        table = pq.read_table(io.BytesIO(data))
        rows, file_total = checksum([table])
        assert (rows, checksum_hex(file_total)) == (f["rows"], f["checksum"])
        participants |= set(table["participant_id"].to_pylist())
        total += file_total
    assert participants == {"P-0", "P-1", "P-3", "P-4", "P-5"}
    assert (tier["rows"], tier["checksum"]) == (60, checksum_hex(total))

    async with pool.acquire() as conn, conn.transaction():  # again: nothing more to erase
        again = await erase_from_archive(conn, store, "P-2", "S-tier")
    assert again == {
        "archive_rows": 0,
        "tier_files_rewritten": 0,
        "tier_rows": 0,
    }


async def test_the_study_keeping_collected_data_keeps_readings_but_not_device_tokens(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    await fill(pool, [15])
    await pool.execute(
        "INSERT INTO devices (device_id, participant_id, token_hash) VALUES ('dev-P-1', 'P-1', 'h1')"
    )
    request = ErasureRequested(
        participant_id="P-1",
        study_id="S-tier",
        request_id=uuid.uuid4(),
        legal_basis=LegalBasis.CONSENT_WITHDRAWN,
        requested_by="participant",
        keep_collected_data=True,
    )
    async with pool.acquire() as conn, conn.transaction():
        erased = await eraser(store)(conn, request)
    assert erased == {"device_tokens": 1}
    device = await pool.fetchrow("SELECT token_hash, revoked_at FROM devices")
    assert device["token_hash"].startswith("erased:")
    assert device["revoked_at"] is not None
    assert await pool.fetchval("SELECT count(*) FROM readings WHERE participant_id = 'P-1'") == 12

    gone = request.model_copy(update={"keep_collected_data": False})
    async with pool.acquire() as conn, conn.transaction():
        erased = await eraser(store)(conn, gone)
    assert erased["device_tokens"] == 0
    assert erased["archive_rows"] == 12

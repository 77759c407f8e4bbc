"""A participant's export is one file per format, whatever the number of days, from
PostgreSQL and from tiered days alike (issue 17), on the real broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from helpers import serving
from ingest.main import create_app
from ingest.tiering_jobs import Tierer
from ingest.tiering_store import TierStore
from staff_tokens import staff_auth
from test_exports_jobs import Ingest, _archive, _event_ids, _finished, _settings, _study

pytestmark = pytest.mark.integration
FILES = {
    "csv": "readings-2026-11-01--2026-11-03.csv",
    "parquet": "readings-2026-11-01--2026-11-03.parquet",
    "fhir-ndjson": "Observation-2026-11-01--2026-11-03.ndjson",
}


@pytest.fixture
async def ingest(kafka: str, database_url: str, tmp_path: Path) -> AsyncIterator[Ingest]:
    app = create_app(_settings(kafka, database_url, tmp_path, jobs=True))
    async with serving(app) as client:
        yield Ingest(client, database_url, kafka, tmp_path)


async def _one_file_each(ing: Ingest, study: str, participant: str, expected: set[str]) -> None:
    manager = staff_auth(None, "data_manager", study=study)
    for fmt, name in FILES.items():
        body = {"study_id": study, "participant_id": participant, "format": fmt}
        r = await ing.client.post("/v1/exports", json=body, headers=manager)
        assert r.status_code == 202, r.text
        job = await _finished(ing, r.json()["export_id"], manager)
        assert job["progress"] == {"rows_written": 15, "parts_done": 1, "parts_total": 1}
        (file,) = job["files"]
        assert (file["name"], file["day"], file["last_day"]) == (name, "2026-11-01", "2026-11-03")
        got = await ing.client.get(file["url"], headers=manager)
        assert got.status_code == 200, got.text
        seen = _event_ids(fmt, got.content)
        assert sorted(seen) == sorted(expected), fmt  # each once, no one else's


async def test_a_participant_s_export_is_one_file_per_format(ingest: Ingest) -> None:
    study, participants = await _study(ingest, ["ingest"], {"site-x": 2})
    everyone = await _archive(ingest.database_url, participants, days=3)
    conn = await asyncpg.connect(ingest.database_url)
    try:
        theirs = {
            str(r["event_id"])
            for r in await conn.fetch(
                "SELECT event_id FROM ingest.readings WHERE participant_id = $1", participants[0]
            )
        }
    finally:
        await conn.close()
    assert len(theirs) == 15
    assert theirs < everyone
    await _one_file_each(ingest, study, participants[0], theirs)

    # the same once its days are Parquet files (decision 0077)
    pool = await asyncpg.create_pool(ingest.database_url, server_settings={"search_path": "ingest"})
    try:
        store = TierStore(str(ingest.export_dir / "tier"))
        await Tierer(pool, store, worker="t", after_days=10, buckets=2).run_all()
        assert await pool.fetchval("SELECT count(*) FROM readings") == 0
    finally:
        await pool.close()
    await _one_file_each(ingest, study, participants[0], theirs)

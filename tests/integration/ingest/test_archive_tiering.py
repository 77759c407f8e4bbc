"""Tiering of old archive days to Parquet (decision 0077), on real PostgreSQL as the
service's role, with the tier on a local directory and on fsspec's in-memory filesystem.

The broker is left out: uploads publish to a list the test reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers import reading
from ingest import repository, service, tiering_repository
from ingest.domain import Uploader
from ingest.service_info import SERVICE
from ingest.tiering import bucket_of, file_path
from ingest.tiering_jobs import Tierer, TierMismatchError
from ingest.tiering_reads import participant_readings
from ingest.tiering_store import TierStore, WrittenFile
from trialstream.db import create_pool, migrate
from trialstream.producer import KeyedRecord

pytestmark = pytest.mark.integration
STUDY = "S-tier"
NOW = datetime.now(UTC)
OLD = datetime.combine((NOW - timedelta(days=20)).date(), datetime.min.time(), UTC)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, schema="ingest", directories=[SERVICE.migrations])
    owner = await asyncpg.connect(database_url)
    try:
        await owner.executemany(
            "INSERT INTO ingest.participants (participant_id, site_id, study_id) VALUES ($1, 's1', $2)",
            [(f"P-{n}", STUDY) for n in range(6)],
        )
    finally:
        await owner.close()
    pool = await create_pool(database_url, schema="ingest", as_service_role=True)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TierStore:
    if request.param == "file":
        return TierStore(f"file://{tmp_path}/tier")
    return TierStore(f"memory://tier-{uuid.uuid4().hex}")


async def upload(pool: asyncpg.Pool, participant: str, records: list[dict[str, Any]]) -> list[str]:
    published: list[tuple[str, bytes]] = []

    async def publish(batch: list[KeyedRecord]) -> None:
        published.extend((r.key or "", r.payload) for r in batch)

    result = await service.upload_readings(
        pool,
        publish,
        Uploader(f"dev-{participant}", participant, study_id=STUDY),
        records,
        max_clock_skew=timedelta(minutes=5),
        archive_days=repository.ArchiveDays(),
    )
    return [r.status.value for r in result.results]


async def fill(pool: asyncpg.Pool, days: Sequence[int], per_day: int = 12) -> dict[str, list[str]]:
    """Readings of six participants on each of `days` (days after OLD); their event ids."""
    ids: dict[str, list[str]] = {}
    for n in range(6):
        participant = f"P-{n}"
        records = [
            reading(
                participant,
                f"dev-{participant}",
                value=60 + i + n / 10,
                measured_at=OLD + timedelta(days=d, minutes=7 * i + n),
            )
            for d in days
            for i in range(per_day)
        ]
        assert set(await upload(pool, participant, records)) == {"accepted"}
        ids[participant] = [r["event_id"] for r in records]
    return ids


def tierer(pool: asyncpg.Pool, store: TierStore, **kw: Any) -> Tierer:
    return Tierer(pool, store, worker=kw.pop("worker", "replica-a"), after_days=10, buckets=4, **kw)


async def test_an_old_day_is_written_verified_recorded_and_then_dropped(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    ids = await fill(pool, [0, 1, 15])  # days 0 and 1 are older than 10 days, 15 is not
    before = await pool.fetch(
        "SELECT * FROM readings WHERE measured_on = $1 ORDER BY event_id", OLD.date()
    )

    done = await tierer(pool, store).run_all()

    assert [(r.day, r.rows) for r in done] == [(OLD.date(), 72), (OLD.date() + timedelta(1), 72)]
    tier, files = await tiering_repository.manifest(pool, OLD.date())
    assert tier is not None
    assert tier["status"] == "tiered"
    assert tier["rows"] == 72
    assert sum(f["rows"] for f in files) == 72
    assert {f["path"] for f in files} == {
        file_path(STUDY, bucket_of(p, 4), OLD.date()) for p in ids
    }
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM readings WHERE measured_on < $1", OLD.date() + timedelta(2)
        )
        == 0
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname LIKE $1", f"readings_{OLD:%Y%m%d}%"
        )
        == 0
    )
    assert await pool.fetchval("SELECT count(*) FROM readings") == 72  # day 15 stays
    # every row, to the microsecond and the last bit of its value
    rows = []
    for f in files:
        with store.fs.open(store.full(f["path"]), "rb") as fh:
            data = fh.read()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert len(data) == f["bytes"]
        rows += pq.read_table(io.BytesIO(data)).to_pylist()
    assert sorted(
        (r["event_id"], r["value"], r["measured_at"], r["received_at"]) for r in rows
    ) == [(str(r["event_id"]), r["value"], r["measured_at"], r["received_at"]) for r in before]
    audit = await pool.fetchval(
        "SELECT new FROM audit_trail WHERE action = 'archive.day_tiered' AND entity_id = $1",
        OLD.date().isoformat(),
    )
    assert '"rows":72' in audit
    assert "P-" not in audit

    assert await tierer(pool, store).run_all() == []  # idempotent: nothing left to tier


async def test_a_participants_readings_span_both_tiers_in_order_and_pages(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    await fill(pool, [0, 1, 12, 13])
    start, end = OLD - timedelta(hours=1), NOW
    untiered = await participant_readings(pool, store, "P-2", STUDY, start, end, None, 1000)
    assert len(untiered) == 48

    await tierer(pool, store).run_all()  # days 0 and 1 move to Parquet

    both = await participant_readings(pool, store, "P-2", STUDY, start, end, None, 1000)
    assert both == untiered
    assert [r["measured_at"] for r in both] == sorted(r["measured_at"] for r in both)
    first_page = await participant_readings(pool, store, "P-2", STUDY, start, end, None, 30)
    assert first_page == untiered[:30]  # 24 from the tier, 6 from PostgreSQL
    later = await participant_readings(
        pool, store, "P-2", STUDY, untiered[29]["measured_at"], end, "heart-rate", 5
    )
    assert later == untiered[29:34]


async def test_files_that_do_not_match_postgresql_leave_the_day_in_postgresql(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    await fill(pool, [0])

    async def corrupt(s: TierStore, files: Sequence[WrittenFile]) -> None:
        """A value changed in one file after it was written (a bad disk, a bad writer)."""
        path = s.full(files[0].path)
        with s.fs.open(path, "rb") as fh:
            table = pq.read_table(io.BytesIO(fh.read()))
        value = pc.add(table["value"], 0.001)
        with s.fs.open(path, "wb") as fh:
            pq.write_table(table.set_column(4, "value", value), fh)

    with pytest.raises(TierMismatchError, match="checksum"):
        await tierer(pool, store, after_write=corrupt).tier_day(OLD.date())

    tier, files = await tiering_repository.manifest(pool, OLD.date())
    assert tier is not None
    assert tier["status"] == "tiering"
    assert files == []
    source = tier["source_tables"][0]
    assert await pool.fetchval(f'SELECT count(*) FROM "{source}"') == 72  # noqa: S608
    # meanwhile, the day is still read (from the detached table)
    rows = await participant_readings(pool, store, "P-0", STUDY, OLD, NOW, None, 100)
    assert len(rows) == 12
    # the next pass writes it again and, matching, tiers it
    done = await tierer(pool, store).run_all()
    assert [r.rows for r in done] == [72]
    assert await participant_readings(pool, store, "P-0", STUDY, OLD, NOW, None, 100) == rows


async def test_a_day_left_half_done_by_a_stopped_replica_is_redone_once(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    await fill(pool, [0])

    async def stop_here(s: TierStore, files: Sequence[WrittenFile]) -> None:
        raise asyncio.CancelledError  # the replica is stopped after writing its files

    with pytest.raises(asyncio.CancelledError):
        await tierer(pool, store, after_write=stop_here, lease_seconds=60).tier_day(OLD.date())
    # a replica killed outright does not even release its lease: it runs out instead
    await pool.execute("UPDATE archive_tiers SET lease_until = now() + interval '1 hour'")
    assert await tierer(pool, store, worker="replica-b").run_all() == []  # still held
    await pool.execute("UPDATE archive_tiers SET lease_until = now() - interval '1 s'")

    done = await tierer(pool, store, worker="replica-b").run_all()

    assert [r.rows for r in done] == [72]
    tier, files = await tiering_repository.manifest(pool, OLD.date())
    assert tier is not None
    assert tier["attempts"] == 2
    assert sum(f["rows"] for f in files) == 72
    assert len(await participant_readings(pool, store, "P-3", STUDY, OLD, NOW, None, 100)) == 12


async def test_two_replicas_tier_a_day_once(pool: asyncpg.Pool, store: TierStore) -> None:
    await fill(pool, [0])
    results = await asyncio.gather(
        tierer(pool, store, worker="replica-a").tier_day(OLD.date()),
        tierer(pool, store, worker="replica-b").tier_day(OLD.date()),
    )
    assert sorted(r is None for r in results) == [False, True]
    assert await pool.fetchval("SELECT count(*) FROM archive_tier_files") == len(
        {bucket_of(f"P-{n}", 4) for n in range(6)}
    )


async def test_a_late_reading_of_a_tiered_day_is_refused_and_never_archived_twice(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    ids = await fill(pool, [0])
    await tierer(pool, store).run_all()
    stored = reading("P-1", "dev-P-1", measured_at=OLD + timedelta(hours=5))
    retry = {**stored, "event_id": ids["P-1"][0]}  # same id as a tiered reading

    assert await upload(pool, "P-1", [stored, retry]) == ["rejected", "rejected"]
    assert await pool.fetchval("SELECT count(*) FROM readings") == 0
    assert await pool.fetchval("SELECT to_regclass($1)", f"readings_{OLD:%Y%m%d}") is None
    rows = await participant_readings(pool, store, "P-1", STUDY, OLD, NOW, None, 100)
    assert sorted(r["event_id"] for r in rows) == sorted(ids["P-1"])
    # a live reading in the same upload is archived as always
    live = reading("P-1", "dev-P-1", measured_at=NOW - timedelta(minutes=1))
    assert await upload(pool, "P-1", [stored, live]) == ["rejected", "accepted"]


async def test_an_upload_that_raced_the_tiering_of_its_day_is_refused_not_lost(
    pool: asyncpg.Pool, store: TierStore
) -> None:
    await fill(pool, [0])
    days = repository.ArchiveDays()
    await days.ensure(pool, [OLD.date()])  # this process has seen the day's partition
    await tierer(pool, store).run_all()  # ... and then it was tiered

    published: list[tuple[str, bytes]] = []

    async def publish(batch: list[KeyedRecord]) -> None:
        published.extend((r.key or "", r.payload) for r in batch)

    late = reading("P-1", "dev-P-1", measured_at=OLD + timedelta(hours=3))
    result = await service.upload_readings(
        pool,
        publish,
        Uploader("dev-P-1", "P-1", study_id=STUDY),
        [late],
        max_clock_skew=timedelta(minutes=5),
        archive_days=days,
    )
    assert [r.status.value for r in result.results] == ["rejected"]
    assert result.results[0].errors[0]["code"] == "day_archived"
    assert published == []


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-protocol server on this machine's loopback (moto's server mode, over TCP)."""
    server_mod = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket="trial-archive")
    try:
        yield endpoint
    finally:
        server.stop()


async def test_a_day_tiers_to_an_s3_compatible_store_and_is_read_back(
    pool: asyncpg.Pool, s3_endpoint: str
) -> None:
    pytest.importorskip("s3fs")
    store = TierStore(
        f"s3://trial-archive/tier-{uuid.uuid4().hex}",
        {
            "key": "test",
            "secret": "test",
            "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        },
    )
    ids = await fill(pool, [0, 12])

    done = await tierer(pool, store).run_all()

    assert [r.rows for r in done] == [72]
    _, files = await tiering_repository.manifest(pool, OLD.date())
    for f in files:
        assert store.fs.info(store.full(f["path"]))["size"] == f["bytes"]
    rows = await participant_readings(pool, store, "P-4", STUDY, OLD, NOW, None, 100)
    assert [r["event_id"] for r in rows] == ids["P-4"]  # uploaded in time order

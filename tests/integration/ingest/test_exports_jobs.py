"""Exports of a study's readings (decision 0076), on the real broker and PostgreSQL: a data
manager starts a job and downloads its files; each reading is in them once; who may see
which job; a job taken over after its replica stopped goes on where it was."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pyarrow.parquet as pq
import pytest
from audit_helpers import audited, changes
from helpers import announce_study, eventually, serving, unique_id
from ingest import exports_repository as repo
from ingest.erasure import withdraw_exports
from ingest.exports_jobs import ExportRunner
from ingest.main import create_app
from ingest.settings import IngestSettings
from ingest.tiering_jobs import Tierer
from ingest.tiering_store import TierStore
from staff_tokens import JWKS, staff_auth

pytestmark = pytest.mark.integration
ADMIN = staff_auth(None, "platform_admin", subject="export-admin")
DAY = datetime(2026, 11, 1, tzinfo=UTC)
METRICS = [
    ("heart-rate", 70.0, "beats/min"),
    ("oxygen-saturation", 97.0, "%"),
    ("body-temperature", 36.6, "C"),
    ("respiratory-rate", 14.0, "breaths/min"),
    ("step-count", 80.0, "steps"),
]


@dataclass
class Ingest:
    client: httpx.AsyncClient
    database_url: str
    kafka: str
    export_dir: Path


def _settings(kafka: str, database_url: str, export_dir: Path, *, jobs: bool) -> IngestSettings:
    return IngestSettings(
        archive_tier_url=str(export_dir / "tier"),
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
        export_dir=export_dir,
        export_poll_seconds=0.1,
        export_jobs=jobs,
    )


@pytest.fixture
async def ingest(kafka: str, database_url: str, tmp_path: Path) -> AsyncIterator[Ingest]:
    app = create_app(_settings(kafka, database_url, tmp_path, jobs=True))
    async with serving(app) as client:
        yield Ingest(client, database_url, kafka, tmp_path)


async def _study(ing: Ingest, modules: list[str], sites: dict[str, int]) -> tuple[str, list[str]]:
    """A study announced with these sites, and participants enrolled at them."""
    study = unique_id("S")
    await announce_study(ing.kafka, study, modules, list(sites))
    participants = []
    for site, count in sites.items():
        for _ in range(count):
            participant = unique_id("P")
            body = {"participant_id": participant, "study_id": study, "site_id": site}

            async def enrolled(body: dict[str, str] = body) -> bool:
                r = await ing.client.post("/v1/admin/participants", json=body, headers=ADMIN)
                return r.status_code == 201  # 503 until the study is read

            if "ingest" in modules:
                await eventually(enrolled)
            participants.append(participant)
    return study, participants


async def _archive(database_url: str, participants: list[str], days: int = 3) -> set[str]:
    """Readings of each participant, five metrics on each of `days` days, written as the
    upload path writes them; returns their event ids."""
    rows = []
    for p in participants:
        for d in range(days):
            for i, (metric, value, unit) in enumerate(METRICS):
                at = DAY + timedelta(days=d, hours=6 + i, minutes=len(rows) % 60)
                rows.append(
                    (
                        uuid.uuid4(),
                        p,
                        f"watch-{p}",
                        metric,
                        value,
                        unit,
                        at,
                        at + timedelta(seconds=2),
                        at.astimezone(UTC).date(),
                    )
                )
    conn = await asyncpg.connect(database_url)
    try:
        # the days' archive partitions first, as an upload makes sure of (decision 0074)
        await conn.execute(
            "SELECT ingest.readings_partitions_for($1::date[])", sorted({r[-1] for r in rows})
        )
        await conn.copy_records_to_table(
            "readings",
            schema_name="ingest",
            records=rows,
            columns=[
                "event_id",
                "participant_id",
                "device_id",
                "metric",
                "value",
                "unit",
                "measured_at",
                "received_at",
                "measured_on",
            ],
        )
    finally:
        await conn.close()
    return {str(r[0]) for r in rows}


async def _finished(ing: Ingest, export_id: str, auth: dict[str, str]) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        r = await ing.client.get(f"/v1/exports/{export_id}", headers=auth)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["status"] != "failed", body
        return body if body["status"] == "done" else None

    return await eventually(done)


def _event_ids(fmt: str, content: bytes) -> list[str]:
    if fmt == "csv":
        return [row["event_id"] for row in csv.DictReader(io.StringIO(content.decode()))]
    if fmt == "parquet":
        return [str(v) for v in pq.read_table(io.BytesIO(content))["event_id"].to_pylist()]
    return [json.loads(line)["id"] for line in content.decode().splitlines()]


async def test_a_data_manager_gets_every_reading_of_the_study_once_in_each_format(
    ingest: Ingest,
) -> None:
    study, participants = await _study(ingest, ["ingest"], {"site-x": 2, "site-y": 1})
    expected = await _archive(ingest.database_url, participants)
    _, elsewhere = await _study(ingest, ["ingest"], {"site-x": 1})
    not_expected = await _archive(ingest.database_url, elsewhere)  # another study's
    manager = staff_auth(None, "data_manager", study=study, subject="dm-1")

    for fmt in ("csv", "parquet", "fhir-ndjson"):
        r = await ingest.client.post(
            "/v1/exports", json={"study_id": study, "format": fmt}, headers=manager
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "queued"
        job = await _finished(ingest, r.json()["export_id"], manager)
        assert job["progress"] == {"rows_written": 45, "parts_done": 3, "parts_total": 3}
        assert [f["day"] for f in job["files"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
        seen: list[str] = []
        for file in job["files"]:
            got = await ingest.client.get(file["url"], headers=manager)
            assert got.status_code == 200, got.text
            seen += _event_ids(fmt, got.content)
        assert sorted(seen) == sorted(expected), fmt  # each once, nothing else
        assert not set(seen) & not_expected

    assert changes(await audited(ingest.database_url, "ingest", "export", job["export_id"]))[0][
        :2
    ] == ("staff:dm-1", "export.requested")


async def test_readings_received_after_the_request_are_left_for_the_next_export(
    ingest: Ingest,
) -> None:
    study, participants = await _study(ingest, ["ingest"], {"site-x": 1})
    expected = await _archive(ingest.database_url, participants, days=1)
    manager = staff_auth(None, "data_manager", study=study)
    conn = await asyncpg.connect(ingest.database_url)
    try:
        late = await conn.fetchval(
            "INSERT INTO ingest.readings (event_id, participant_id, device_id, metric, value,"
            " unit, measured_at, received_at, measured_on) VALUES (gen_random_uuid(), $1, 'w',"
            " 'heart-rate', 60, 'beats/min', $2, now() + interval '1 hour',"
            " ($2 AT TIME ZONE 'UTC')::date) RETURNING event_id::text",
            participants[0],
            DAY,
        )
    finally:
        await conn.close()
    r = await ingest.client.post(
        "/v1/exports", json={"study_id": study, "format": "csv"}, headers=manager
    )
    job = await _finished(ingest, r.json()["export_id"], manager)
    content = (await ingest.client.get(job["files"][0]["url"], headers=manager)).content
    assert set(_event_ids("csv", content)) == expected
    assert late not in expected


async def test_who_may_export_what(ingest: Ingest) -> None:
    study, participants = await _study(ingest, ["ingest"], {"site-x": 1, "site-y": 1})
    await _archive(ingest.database_url, participants, days=1)
    no_ingest, _ = await _study(ingest, ["epro"], {"site-x": 1})
    manager = staff_auth(None, "data_manager", study=study)
    body = {"study_id": study, "format": "csv"}

    nurse = staff_auth(None, "site_staff", study=study)
    r = await ingest.client.post("/v1/exports", json=body, headers=nurse)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    other_study = unique_id("S")
    other = staff_auth(None, "data_manager", study=other_study)
    r = await ingest.client.post("/v1/exports", json=body, headers=other)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    r = await ingest.client.post(  # their own study, never declared
        "/v1/exports", json={"study_id": other_study, "format": "csv"}, headers=other
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_study")
    assert "study_id" in str(r.json())

    r = await ingest.client.post("/v1/exports", json={**body, "format": "xlsx"}, headers=manager)
    assert r.status_code == 422
    assert "format" in str(r.json())
    r = await ingest.client.post(
        "/v1/exports", json={**body, "participant_id": unique_id("P")}, headers=manager
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_participant")
    theirs = staff_auth(None, "data_manager", study=no_ingest)

    async def refused() -> bool:
        r = await ingest.client.post(
            "/v1/exports", json={"study_id": no_ingest, "format": "csv"}, headers=theirs
        )
        return (r.status_code, r.json()["error"]["code"]) == (409, "module_not_enabled")

    await eventually(refused)

    # a data manager of site-x exports site-x only, and does not see a whole-study job
    at_x = staff_auth("site-x", "data_manager", study=study)
    r = await ingest.client.post("/v1/exports", json=body, headers=at_x)
    assert r.status_code == 202, r.text
    assert r.json()["site_ids"] == ["site-x"]
    job = await _finished(ingest, r.json()["export_id"], at_x)
    rows = await ingest.client.get(job["files"][0]["url"], headers=at_x)
    assert {row["participant_id"] for row in csv.DictReader(io.StringIO(rows.text))} == {
        participants[0]
    }
    whole = await ingest.client.post("/v1/exports", json=body, headers=manager)
    whole_id = whole.json()["export_id"]
    r = await ingest.client.get(f"/v1/exports/{whole_id}", headers=at_x)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_export")
    r = await ingest.client.get(f"/v1/exports/{whole_id}", headers=other)
    assert r.status_code == 404
    r = await ingest.client.get(f"/v1/exports/{whole_id}/files/..%2F..%2Fetc", headers=manager)
    assert r.status_code == 404


async def test_a_job_taken_over_after_its_replica_stopped_writes_each_reading_once(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    app = create_app(_settings(kafka, database_url, tmp_path, jobs=False))
    async with serving(app) as client:
        ing = Ingest(client, database_url, kafka, tmp_path)
        study, participants = await _study(ing, ["ingest"], {"site-x": 2})
        expected = await _archive(database_url, participants, days=3)
        manager = staff_auth(None, "data_manager", study=study)
        r = await client.post(
            "/v1/exports", json={"study_id": study, "format": "csv"}, headers=manager
        )
        export_id = uuid.UUID(r.json()["export_id"])

        pool = await asyncpg.create_pool(database_url, server_settings={"search_path": "ingest"})
        try:
            first = ExportRunner(pool, tmp_path, worker="replica-a", concurrency=1)
            job = await repo.claim(pool, "replica-a", 60)
            assert job is not None
            await repo.plan(pool, job, "replica-a")
            day_one = (await repo.parts_to_do(pool, export_id))[0]
            path = tmp_path / str(export_id) / day_one["file_name"]
            path.parent.mkdir(parents=True)
            done = await first._write_part(job, path, [day_one["day"]])
            assert await repo.part_done(pool, export_id, "replica-a", 1, done.rows, 10, "x")
            # replica-a stops here; its lease runs out
            await pool.execute(
                "UPDATE exports SET lease_until = now() - interval '1 s' WHERE export_id = $1",
                export_id,
            )
            second = ExportRunner(pool, tmp_path, worker="replica-b")
            assert await second.run_next()
            assert not await second.run_next()  # nothing left
            # replica-a, back, may not record anything of the job any more
            assert not await repo.part_done(pool, export_id, "replica-a", 2, 1, 1, "y")
        finally:
            await pool.close()

        job_shown = await _finished(ing, str(export_id), manager)
        assert job_shown["files"][0]["sha256"] == "x"  # day one was not written again
        assert job_shown["progress"]["parts_done"] == 3
        seen: list[str] = []
        for file in job_shown["files"]:
            seen += _event_ids("csv", (await client.get(file["url"], headers=manager)).content)
        assert sorted(seen) == sorted(expected)


async def test_an_export_running_when_a_participant_is_erased_keeps_no_file(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    """Issue 18: days written before the erasure may hold the participant; the running job
    is withdrawn with the finished ones, and deletes its files when it ends."""
    app = create_app(_settings(kafka, database_url, tmp_path, jobs=False))
    async with serving(app) as client:
        ing = Ingest(client, database_url, kafka, tmp_path)
        study, participants = await _study(ing, ["ingest"], {"site-x": 2})
        await _archive(database_url, participants, days=3)
        manager = staff_auth(None, "data_manager", study=study)
        r = await client.post(
            "/v1/exports", json={"study_id": study, "format": "csv"}, headers=manager
        )
        export_id = uuid.UUID(r.json()["export_id"])
        queued = await client.post(  # asked for after: left to run, it reads the archive later
            "/v1/exports", json={"study_id": study, "format": "csv"}, headers=manager
        )
        pool = await asyncpg.create_pool(database_url, server_settings={"search_path": "ingest"})
        try:
            runner = ExportRunner(pool, tmp_path, worker="replica-a", concurrency=1)
            job = await repo.claim(pool, "replica-a", 60)
            assert job is not None
            assert job.export_id == export_id
            await repo.plan(pool, job, "replica-a")
            day_one = (await repo.parts_to_do(pool, export_id))[0]
            path = tmp_path / str(export_id) / day_one["file_name"]
            path.parent.mkdir(parents=True)
            done = await runner._write_part(job, path, [day_one["day"]])
            assert await repo.part_done(pool, export_id, "replica-a", 1, done.rows, 10, "x")
            assert participants[0] in path.read_text()  # the day holds the participant
            async with pool.acquire() as conn, conn.transaction():
                withdrawn = await withdraw_exports(conn, tmp_path, participants[0], study)
            assert withdrawn == 1  # the running one; the queued one is not touched
            await runner.run(job)  # the job runs on (here: claimed again) ...
        finally:
            await pool.close()
        assert not (tmp_path / str(export_id)).exists()  # ... and keeps no file
        shown = (await client.get(f"/v1/exports/{export_id}", headers=manager)).json()
        assert shown["expired_at"] is not None, shown
        gone = await client.get(f"/v1/exports/{export_id}/files/1", headers=manager)
        assert gone.status_code in (404, 410), gone.text
        later = await client.get(f"/v1/exports/{queued.json()['export_id']}", headers=manager)
        assert later.json()["expired_at"] is None


async def test_readings_and_exports_of_tiered_days_come_from_their_parquet_files(
    ingest: Ingest,
) -> None:
    """Decision 0077: once days moved to Parquet, the staff route and every export format
    still give each reading once, in the same order as before."""
    study, participants = await _study(ingest, ["ingest"], {"site-x": 2, "site-y": 1})
    expected = await _archive(ingest.database_url, participants, days=3)
    manager = staff_auth(None, "data_manager", study=study)
    url = f"/v1/participants/{participants[0]}/readings"
    query = {"from": (DAY - timedelta(days=1)).isoformat(), "limit": 100}
    before = await ingest.client.get(url, params=query, headers=ADMIN)
    assert before.status_code == 200, before.text
    assert len(before.json()["readings"]) == 15
    csv_before = await _csv_files(ingest, study, manager)

    pool = await asyncpg.create_pool(ingest.database_url, server_settings={"search_path": "ingest"})
    try:
        store = TierStore(str(ingest.export_dir / "tier"))
        done = await Tierer(pool, store, worker="t", after_days=10, buckets=2).run_all()
        assert sum(r.rows for r in done) == 45
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM readings WHERE measured_on < $1", DAY.date() + timedelta(3)
            )
            == 0
        )
    finally:
        await pool.close()

    after = await ingest.client.get(url, params=query, headers=ADMIN)
    assert after.json() == before.json()
    paged = await ingest.client.get(url, params={**query, "limit": 7}, headers=ADMIN)
    assert paged.json()["readings"] == before.json()["readings"][:7]

    for fmt in ("csv", "parquet", "fhir-ndjson"):
        r = await ingest.client.post(
            "/v1/exports", json={"study_id": study, "format": fmt}, headers=manager
        )
        job = await _finished(ingest, r.json()["export_id"], manager)
        assert [f["day"] for f in job["files"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
        seen: list[str] = []
        for file in job["files"]:
            seen += _event_ids(fmt, (await ingest.client.get(file["url"], headers=manager)).content)
        assert sorted(seen) == sorted(expected), fmt
    # CSV lines of a tiered day are the ones PostgreSQL gave (within a day, rows are in
    # file order: sorted here)
    assert {
        d: sorted(c.splitlines()) for d, c in (await _csv_files(ingest, study, manager)).items()
    } == {d: sorted(c.splitlines()) for d, c in csv_before.items()}
    at_y = staff_auth("site-y", "data_manager", study=study)
    r = await ingest.client.post(
        "/v1/exports", json={"study_id": study, "format": "csv"}, headers=at_y
    )
    job = await _finished(ingest, r.json()["export_id"], at_y)
    rows = []
    for file in job["files"]:
        got = await ingest.client.get(file["url"], headers=at_y)
        rows += list(csv.DictReader(io.StringIO(got.text)))
    assert {row["participant_id"] for row in rows} == {participants[2]}
    assert len(rows) == 15
    assert rows[0]["measured_at"].endswith("+00")  # the same text as from PostgreSQL


async def _csv_files(ing: Ingest, study: str, auth: dict[str, str]) -> dict[str, str]:
    r = await ing.client.post(
        "/v1/exports", json={"study_id": study, "format": "csv"}, headers=auth
    )
    job = await _finished(ing, r.json()["export_id"], auth)
    return {f["day"]: (await ing.client.get(f["url"], headers=auth)).text for f in job["files"]}

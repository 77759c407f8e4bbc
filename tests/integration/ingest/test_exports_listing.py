"""A study's exports listed for those who may see them, and old exports deleted with
their files (issue 17), on the real broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from audit_helpers import audited, changes
from helpers import serving
from ingest.exports_cleanup import expire_old
from ingest.main import create_app
from staff_tokens import staff_auth
from test_exports_jobs import Ingest, _archive, _finished, _settings, _study

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(kafka: str, database_url: str, tmp_path: Path) -> AsyncIterator[Ingest]:
    app = create_app(_settings(kafka, database_url, tmp_path, jobs=True))
    async with serving(app) as client:
        yield Ingest(client, database_url, kafka, tmp_path)


async def _start(ing: Ingest, study: str, auth: dict[str, str]) -> str:
    r = await ing.client.post(
        "/v1/exports", json={"study_id": study, "format": "csv"}, headers=auth
    )
    assert r.status_code == 202, r.text
    export_id: str = r.json()["export_id"]
    return export_id


async def _listed(ing: Ingest, auth: dict[str, str], **query: str) -> list[str]:
    r = await ing.client.get("/v1/exports", params=query, headers=auth)
    assert r.status_code == 200, r.text
    return [e["export_id"] for e in r.json()["exports"]]


async def test_a_study_s_exports_are_listed_to_those_who_may_open_them(ingest: Ingest) -> None:
    study, participants = await _study(ingest, ["ingest"], {"site-x": 1, "site-y": 1})
    await _archive(ingest.database_url, participants, days=1)
    manager = staff_auth(None, "data_manager", study=study, subject="dm-list")
    at_x = staff_auth("site-x", "data_manager", study=study, subject="dm-x")
    whole = await _start(ingest, study, manager)
    mine_x = await _start(ingest, study, at_x)
    other_study, _ = await _study(ingest, ["ingest"], {"site-x": 1})
    elsewhere = await _start(
        ingest, other_study, staff_auth(None, "data_manager", study=other_study)
    )
    await _finished(ingest, whole, manager)

    assert await _listed(ingest, manager, study=study) == [mine_x, whole]  # newest first
    assert await _listed(ingest, manager, study=study, mine="true") == [whole]
    assert await _listed(ingest, at_x, study=study) == [mine_x]  # no job of site-y
    assert await _listed(ingest, manager, study=study, site="site-x") == [mine_x]
    r = await ingest.client.get(
        "/v1/exports", params={"study": study, "site": "site-y"}, headers=at_x
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    assert elsewhere not in await _listed(ingest, manager, study=study)
    r = await ingest.client.get("/v1/exports", params={"study": study}, headers=manager)
    listed = {e["export_id"]: e for e in r.json()["exports"]}
    assert listed[whole]["files"][0]["url"].startswith(f"/v1/exports/{whole}/files/")

    nurse = staff_auth(None, "site_staff", study=study)
    r = await ingest.client.get("/v1/exports", params={"study": study}, headers=nurse)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    theirs = staff_auth(None, "data_manager", study=other_study)
    r = await ingest.client.get("/v1/exports", params={"study": study}, headers=theirs)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    r = await ingest.client.get("/v1/exports", headers=manager)
    assert r.status_code == 422
    assert "study" in str(r.json())


async def test_old_exports_are_deleted_with_their_files_and_answer_410(ingest: Ingest) -> None:
    study, participants = await _study(ingest, ["ingest"], {"site-x": 1})
    await _archive(ingest.database_url, participants, days=2)
    manager = staff_auth(None, "data_manager", study=study)
    old, recent = await _start(ingest, study, manager), await _start(ingest, study, manager)
    old_job = await _finished(ingest, old, manager)
    await _finished(ingest, recent, manager)
    conn = await asyncpg.connect(ingest.database_url)
    try:
        await conn.execute(
            "UPDATE ingest.exports SET finished_at = finished_at - interval '8 days'"
            " WHERE export_id = $1::uuid",
            old,
        )
    finally:
        await conn.close()
    assert (ingest.export_dir / old).is_dir()

    pool = await asyncpg.create_pool(
        ingest.database_url, server_settings={"search_path": "ingest"}, min_size=1, max_size=2
    )
    try:
        assert await expire_old(pool, ingest.export_dir, keep_days=7) == 1
        assert await expire_old(pool, ingest.export_dir, keep_days=7) == 0  # once
    finally:
        await pool.close()

    assert not (ingest.export_dir / old).exists()
    assert (ingest.export_dir / recent).is_dir()
    r = await ingest.client.get(f"/v1/exports/{old}", headers=manager)
    assert r.status_code == 200
    assert r.json()["expired_at"] is not None
    assert r.json()["files"] == []
    assert r.json()["progress"]["rows_written"] == 10  # what it held, still shown
    r = await ingest.client.get(old_job["files"][0]["url"], headers=manager)
    assert (r.status_code, r.json()["error"]["code"]) == (410, "export_expired")
    assert "kept 7 days" in r.json()["error"]["message"]
    r = await ingest.client.get(f"/v1/exports/{recent}", headers=manager)
    assert r.json()["expired_at"] is None
    got = await ingest.client.get(r.json()["files"][0]["url"], headers=manager)
    assert got.status_code == 200
    entries = changes(await audited(ingest.database_url, "ingest", "export", old))
    assert [(actor, action) for actor, action, _, _ in entries][-1] == (
        "system:ingest",
        "export.expired",
    )

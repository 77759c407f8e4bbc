"""Studies on the real broker and database: `trialstream study apply` (a diff, a dry run,
idempotent, versioned, audited) at the identity service, the definition announced on the
studies topic, and ingest enrolling only into a declared study, at its sites, when the
study uses ingest, by staff of that study."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from audit_helpers import audited
from helpers import eventually, read_topic, serving, unique_id
from identity.main import create_app as identity_app
from identity.settings import IdentitySettings
from ingest.main import create_app as ingest_app
from ingest.settings import IngestSettings
from servers import tcp_server
from staff_tokens import JWKS, KEY, staff_auth
from trialstream.embedded import free_port
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ADMIN = "studies-admin"
TRIALSTREAM = Path(sys.executable).parent / "trialstream"


def study_file(tmp_path: Path, study_id: str, *, modules: str, title: str = "First") -> Path:
    path = tmp_path / f"{study_id}-{title}.yaml"
    path.write_text(
        f"study_id: {study_id}\ntitle: {title}\nsponsor: Acme\n"
        "sites:\n  - {id: site-1, timezone: Europe/Rome, languages: [it]}\n"
        "  - {id: site-2, timezone: Asia/Tokyo}\n"
        f"modules: [{modules}]\n"
    )
    return path


@dataclass
class Platform:
    identity_url: str
    ingest: httpx.AsyncClient

    async def cli(self, *args: str, token: str = ADMIN) -> tuple[int, str]:
        env = {
            **os.environ,
            "TRIALSTREAM_ADMIN_TOKEN": token,
            "TRIALSTREAM_IDENTITY_URL": self.identity_url,
        }
        process = await asyncio.create_subprocess_exec(
            str(TRIALSTREAM),
            "study",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    async def enrol(self, auth: dict[str, str], **body: Any) -> httpx.Response:
        return await self.ingest.post("/v1/admin/participants", json=body, headers=auth)


@pytest.fixture
async def platform(kafka: str, database_url: str) -> AsyncIterator[Platform]:
    port = free_port()
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database_url,
        "admin_token": ADMIN,
        "kafka_session_timeout_ms": 2000,
        "oidc_jwks": JWKS,
    }
    async with AsyncExitStack() as stack:
        settings = IdentitySettings(**common, port=port, signing_key_pem=KEY.pem().decode("ascii"))
        url = await stack.enter_async_context(tcp_server(identity_app(settings), port))
        ingest = await stack.enter_async_context(serving(ingest_app(IngestSettings(**common))))
        yield Platform(url, ingest)


async def test_apply_shows_a_diff_dry_runs_versions_and_is_idempotent(
    platform: Platform, tmp_path: Path, kafka: str, database_url: str
) -> None:
    study = unique_id("S")
    first = study_file(tmp_path, study, modules="ingest, monitoring")
    code, out = await platform.cli("apply", str(first), "--dry-run")
    assert code == 0, out
    assert "+study_id: " in out
    assert "dry run, nothing applied" in out
    code, out = await platform.cli("show", study)
    assert code == 1  # the dry run created nothing
    code, out = await platform.cli("apply", str(first))
    assert (code, out.strip().splitlines()[-1]) == (0, f"{study}: version 1 applied"), out
    code, out = await platform.cli("apply", str(first))
    assert (code, out.strip()) == (0, f"{study}: unchanged (version 1)"), out

    changed = study_file(tmp_path, study, modules="ingest, monitoring, epro", title="Second")
    code, out = await platform.cli("apply", str(changed))
    assert code == 0, out
    assert "-title: First" in out
    assert "+title: Second" in out
    assert "+- epro" in out
    assert out.strip().endswith("version 2 applied")

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"study_id: {study}\ntitle: t\nsponsor: s\nsites: []\nmodules: [ingest]\n")
    code, out = await platform.cli("apply", str(bad))
    assert code == 2
    assert "sites: List should have at least 1 item" in out

    admin = {"Authorization": f"Bearer {ADMIN}"}
    versions = await platform.ingest.get("/healthz")  # ingest is up; now the issuer's history
    assert versions.status_code == 200
    async with httpx.AsyncClient(base_url=platform.identity_url) as client:
        history = (await client.get(f"/v1/studies/{study}/versions", headers=admin)).json()
    assert [v["version"] for v in history["versions"]] == [2, 1]
    entries = await audited(database_url, "identity", "study", study)
    assert [(e["action"], e["new"]["version"]) for e in entries] == [
        ("study.defined", 1),
        ("study.defined", 2),
    ]
    announced = await read_topic(
        kafka, Topic.STUDIES, match=lambda e: e["definition"]["study_id"] == study
    )
    assert [e["version"] for e in announced] == [1, 2]


async def test_only_admins_change_a_study_and_only_its_own(
    platform: Platform, tmp_path: Path
) -> None:
    study, other = unique_id("S"), unique_id("S")
    for s in (study, other):
        assert (await platform.cli("apply", str(study_file(tmp_path, s, modules="ingest"))))[0] == 0
    body = {
        "study_id": study,
        "title": "Changed",
        "sponsor": "Acme",
        "sites": [{"id": "site-1", "timezone": "UTC"}],
        "modules": ["ingest"],
    }
    async with httpx.AsyncClient(base_url=platform.identity_url) as client:
        mine = staff_auth(None, "study_admin", study=study)
        assert (
            await client.put(f"/v1/studies/{study}", json=body, headers=mine)
        ).status_code == 200
        theirs = {**body, "study_id": other}
        r = await client.put(f"/v1/studies/{other}", json=theirs, headers=mine)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
        new = {**body, "study_id": unique_id("S")}
        r = await client.put(f"/v1/studies/{new['study_id']}", json=new, headers=mine)
        assert r.status_code == 403  # creating a study is a platform admin's
        nurse = staff_auth("site-1", "site_staff", study=study)
        assert (
            await client.put(f"/v1/studies/{study}", json=body, headers=nurse)
        ).status_code == 403
        listed = (await client.get("/v1/studies", headers=nurse)).json()["studies"]
        assert [s["study_id"] for s in listed] == [study]
        mismatch = await client.put(f"/v1/studies/{study}", json=theirs, headers=mine)
        assert mismatch.status_code == 422


async def test_ingest_enrols_only_into_a_declared_study_at_its_sites(
    platform: Platform, tmp_path: Path, kafka: str
) -> None:
    with_ingest, without = unique_id("S"), unique_id("S")
    await platform.cli("apply", str(study_file(tmp_path, with_ingest, modules="ingest, anomaly")))
    await platform.cli("apply", str(study_file(tmp_path, without, modules="epro")))
    admin = staff_auth(None, "platform_admin")  # the admin token only bootstraps identity

    async def known() -> bool:
        r = await platform.enrol(
            admin, participant_id=unique_id("P"), study_id=with_ingest, site_id="nowhere"
        )
        return r.status_code == 422 and r.json()["error"]["code"] == "unknown_site"

    await eventually(known)  # ingest has read the studies topic
    nurse = staff_auth("site-1", "site_staff", study=with_ingest)
    pid = unique_id("P")
    r = await platform.enrol(nurse, participant_id=pid, study_id=with_ingest, site_id="site-1")
    assert r.status_code == 201, r.text
    assert r.json()["timezone"] == "Europe/Rome"  # the site's, from the study file
    r = await platform.enrol(
        nurse, participant_id=unique_id("P"), study_id=with_ingest, site_id="site-2"
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    r = await platform.enrol(
        nurse, participant_id=unique_id("P"), study_id=without, site_id="site-1"
    )
    assert r.status_code == 403  # no role in that study

    async def refused_module() -> bool:
        r = await platform.enrol(
            admin, participant_id=unique_id("P"), study_id=without, site_id="site-1"
        )
        return (r.status_code, r.json()["error"]["code"]) == (409, "module_not_enabled")

    await eventually(refused_module)  # ingest may read the second study a moment later
    r = await platform.enrol(
        admin, participant_id=unique_id("P"), study_id="NO-SUCH", site_id="site-1"
    )
    assert (r.status_code, r.json()["error"]["details"][0]["field"]) == (422, "study_id")
    [state] = await read_topic(
        kafka, Topic.PARTICIPANTS, match=lambda e: e["participant_id"] == pid
    )
    assert (state["study_id"], state["site_id"]) == (with_ingest, "site-1")
    # The participant's device uploads readings stamped with the study (the scorer applies
    # the study's alert limits from it).
    device = unique_id("dev")
    r = await platform.ingest.post(
        "/v1/admin/devices", json={"device_id": device, "participant_id": pid}, headers=nurse
    )
    assert r.status_code == 201, r.text
    upload = {
        "event_id": str(uuid.uuid4()),
        "participant_id": pid,
        "device_id": device,
        "metric": "heart-rate",
        "value": 71,
        "unit": "beats/min",
        "measured_at": datetime.now(UTC).isoformat(),
    }
    r = await platform.ingest.post(
        "/v1/readings",
        json={"readings": [upload]},
        headers={"Authorization": f"Bearer {r.json()['token']}"},
    )
    assert r.json()["accepted"] == 1, r.text
    [reading] = await read_topic(kafka, Topic.READINGS, match=lambda e: e["participant_id"] == pid)
    assert reading["study_id"] == with_ingest
    # Staff of the default study at the same site name do not see this participant.
    other = staff_auth("site-1", "site_staff")
    r = await platform.ingest.get(
        f"/v1/participants/{pid}/readings", params={"from": "2026-01-01T00:00:00Z"}, headers=other
    )
    assert r.status_code == 404

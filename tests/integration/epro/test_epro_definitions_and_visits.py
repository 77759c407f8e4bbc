"""Publishing questionnaire versions over HTTP; visits from telehealth anchor schedules."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from epro import due_and_missed
from epro.main import create_app
from epro_support import Epro, epro_settings, publish
from helpers import eventually, serving
from trialstream.errors import Kind, Refused
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitStatus, VisitType

pytestmark = pytest.mark.integration


def pain_v(version: int, title: str = "Pain now") -> dict[str, Any]:
    q = json.loads((files("epro") / "questionnaires" / "pain-nrs.v1.json").read_text("utf-8"))
    return {**q, "version": version, "title": {"en": title, "de": title}}


async def test_a_new_version_is_published_and_a_published_one_cannot_change(epro: Epro) -> None:
    r = await epro.client.post("/v1/admin/questionnaires", json=pain_v(2), headers=epro.admin)
    assert (r.status_code, r.json()) == (201, {"pain-nrs@2": "published"})
    same = await epro.client.post("/v1/admin/questionnaires", json=pain_v(2), headers=epro.admin)
    assert same.json() == {"pain-nrs@2": "unchanged"}
    changed = await epro.client.post(
        "/v1/admin/questionnaires", json=pain_v(1, "Edited"), headers=epro.admin
    )
    assert (changed.status_code, changed.json()["error"]["code"]) == (
        409,
        "published_version_is_immutable",
    )
    broken = {**pain_v(3), "languages": ["en", "fr"]}
    invalid = await epro.client.post("/v1/admin/questionnaires", json=broken, headers=epro.admin)
    assert invalid.status_code == 422
    assert "no text for language fr" in json.dumps(invalid.json())

    _, app = await epro.enroll()
    body = {
        "response_id": str(uuid.uuid4()),
        "questionnaire_id": "pain-nrs",
        "questionnaire_version": 2,
        "authored_at": datetime.now(UTC).isoformat(),
        "answers": {"pain": 4},
    }
    assert (await epro.submit(app, body)).status_code == 201


async def test_a_completed_visit_anchors_the_visit_relative_schedule(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    zone, due = "Europe/Berlin", now - timedelta(minutes=30)
    at = due.astimezone(ZoneInfo(zone)).strftime("%H:%M")
    protocol = tmp_path / "protocol.json"
    protocol.write_text(json.dumps({"schedules": [{
        "schedule_id": "after-visit", "questionnaire_id": "pain-nrs", "questionnaire_version": 1,
        "rule": {"kind": "after_visit", "days": [3], "at": at, "window_minutes": 120}}]}))  # fmt: skip
    app = create_app(epro_settings(kafka, database_url, protocol))
    async with serving(app) as client:
        epro = Epro(client, kafka, database_url)
        pool = app.state.runtime.pool
        with_visit, _ = await epro.enroll(timezone=zone, enrolled_at=now - timedelta(days=10))
        without, _ = await epro.enroll(timezone=zone, enrolled_at=now - timedelta(days=10))
        visit_at = due - timedelta(days=3)  # same local day as `due`, three days earlier
        visit = VisitChanged(
            participant_id=with_visit, site_id="site-a", visit_id=uuid.uuid4(), visit_name="Day 7",
            visit_type=VisitType.VIDEO, status=VisitStatus.COMPLETED, window_start=visit_at,
            window_end=visit_at + timedelta(days=1), starts_at=visit_at,
        )  # fmt: skip
        await publish(kafka, Topic.VISITS, [(with_visit, visit), (with_visit, visit)])
        await eventually(
            lambda: epro.sql("SELECT 1 FROM visit_anchors WHERE participant_id = $1", with_visit)
        )
        assert await due_and_missed.tick(pool, now) == (1, 0)
        rows = await epro.sql("SELECT participant_id, due_at FROM occurrences")
        assert [(r["participant_id"], r["due_at"]) for r in rows] == [
            (with_visit, now - timedelta(minutes=30))
        ]
        assert without != with_visit


async def test_service_refuses_to_start_when_a_published_version_was_edited_in_place(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "pain-nrs.v1.json").write_text(json.dumps(pain_v(1, "Edited in place")))
    settings = epro_settings(kafka, database_url).model_copy(
        update={"questionnaires_dir": tmp_path}
    )
    with pytest.raises(Refused, match="already published with other content") as refused:
        async with serving(create_app(settings)):
            pass
    assert refused.value.kind is Kind.CONFLICT
    (tmp_path / "pain-nrs.v1.json").unlink()
    (tmp_path / "pain-nrs.v5.json").write_text(json.dumps(pain_v(5)))
    async with serving(create_app(settings)) as client:
        r = await client.get("/v1/questionnaires/pain-nrs/versions/5")
        assert r.status_code == 200

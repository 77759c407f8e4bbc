"""A declared study's retention rules (quiet hours, daily cap, languages), read from the
studies topic by the running service, against the real broker and PostgreSQL; the default
study keeps the service settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest
from helpers import (
    announce_study,
    eventually,
    migrate_as_released_before,
    read_topic,
    serving,
    unique_id,
)
from retention.domain import in_quiet_hours
from retention.main import create_app
from retention.service_info import SERVICE
from retention_support import AUTH, NO_QUIET_HOURS, Retention, due_event, settings_for
from trialstream.db import migrate
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration

SERVICE_CAP = 2  # RETENTION_MAX_NUDGES_PER_DAY for these tests


@pytest.fixture
async def capped(kafka: str, database_url: str) -> AsyncIterator[Retention]:
    settings = settings_for(kafka, database_url, max_nudges_per_day=SERVICE_CAP)
    async with serving(create_app(settings)) as client:
        yield Retention(client, kafka, database_url)


def _wall(at: datetime) -> str:
    return at.strftime("%H:%M")


async def test_a_study_participant_is_nudged_by_the_studys_quiet_hours_cap_and_languages(
    capped: Retention,
) -> None:
    now = datetime.now(UTC)
    # The study's quiet hours hold "now" (UTC sites); the service's 21:00-08:00 may not.
    quiet_start, quiet_end = now - timedelta(hours=1), now + timedelta(hours=2)
    site, study = unique_id("site"), unique_id("S")
    start, stop = _wall(quiet_start), _wall(quiet_end)
    rules = {"languages": ["fr", "de"], "quiet_start": start, "quiet_end": stop, "max_per_day": 1}
    await announce_study(capped.kafka, study, ["epro", "retention"], [site], retention=rules)
    # No quiet hours of their own (null): the study's apply; German is a study language.
    german = await capped.participant(
        site=site, study=study, language="de", quiet_start=None, quiet_end=None
    )
    # Their own "no quiet hours" win; Spanish is not a study language and their site is not
    # in the study file: the study's first retention language.
    spanish = await capped.participant(site=unique_id("site"), study=study, language="es")
    await capped.publish(Topic.EPRO_DUE, [due_event(german), due_event(spanish)])

    [deferred] = await capped.nudges_where(german, 1, status="queued")
    end = datetime.combine(now.date(), time.fromisoformat(stop), tzinfo=UTC)
    assert datetime.fromisoformat(deferred["send_at"]) in (end, end + timedelta(days=1))
    assert (deferred["language"], deferred["body"][:20]) == ("de", "Ihr Fragebogen ist b")
    intended = deferred["journey"][0]["detail"]
    assert f"study {study}: language de (participant's language de)" in intended
    assert f"quiet {start}-{stop} (study's)" in intended

    [sent] = await capped.nudges_where(spanish, 1, status="sent")
    assert (sent["language"], sent["body"][:20]) == ("fr", "Votre questionnaire ")
    assert "study's first retention language" in sent["journey"][0]["detail"]
    assert "quiet 00:00-00:00 (participant's)" in sent["journey"][0]["detail"]
    [announced] = await eventually(
        lambda: read_topic(
            capped.kafka, Topic.NUDGES, match=lambda v: v["participant_id"] == spanish
        )
    )
    assert announced["study_id"] == study  # the event names the participant's study

    # The study's cap (1) is below the service's (2): the second nudge that day is dropped.
    await capped.publish(Topic.EPRO_DUE, [due_event(german)])
    [dropped] = await capped.nudges_where(german, 1, status="suppressed")
    assert dropped["suppress_reason"] == "frequency-cap"
    assert "cap 1" in dropped["journey"][1]["detail"]

    # A new version of the study file applies to the next decision.
    await announce_study(
        capped.kafka,
        study,
        ["epro", "retention"],
        [site],
        version=2,
        retention={**rules, "max_per_day": 3},
    )
    studies = capped.client._transport.app.state.runtime.studies  # type: ignore[attr-defined]

    async def version_2_read() -> bool:
        return studies.get(study).retention.max_per_day == 3  # type: ignore[no-any-return]

    await eventually(version_2_read)
    await capped.publish(Topic.EPRO_DUE, [due_event(german)])
    await capped.nudges_where(german, 2, status="queued")


async def test_a_default_study_participant_keeps_the_service_cap_and_quiet_hours(
    capped: Retention,
) -> None:
    pid = await capped.participant(site=unique_id("site"), quiet_start=None, quiet_end=None)
    now = datetime.now(UTC)
    await capped.publish(Topic.EPRO_DUE, [due_event(pid) for _ in range(SERVICE_CAP + 1)])

    [dropped] = await capped.nudges_where(pid, 1, status="suppressed")
    assert dropped["suppress_reason"] == "frequency-cap"
    assert f"cap {SERVICE_CAP}" in dropped["journey"][1]["detail"]
    kept = [n for n in await capped.nudges(pid) if n["status"] != "suppressed"]
    assert len(kept) == SERVICE_CAP
    for nudge in kept:
        assert nudge["language"] == "en"
        assert nudge["journey"][0]["detail"] == "epro-due via push in en (reminder)"
        send_at = datetime.fromisoformat(nudge["send_at"])
        if in_quiet_hours(now.time(), time(21, 0), time(8, 0)):  # the service's, in UTC
            assert send_at.time() == time(8, 0)
        else:
            assert send_at < now + timedelta(minutes=1)


async def test_preferences_left_unset_are_stored_as_not_chosen_and_halves_are_refused(
    capped: Retention,
) -> None:
    pid = await capped.participant(quiet_start=None, quiet_end=None)
    [row] = await capped.sql(
        "SELECT language, quiet_start, quiet_end, max_per_day FROM preferences"
        " WHERE participant_id = $1",
        pid,
    )
    assert dict(row) == {
        "language": None,
        "quiet_start": None,
        "quiet_end": None,
        "max_per_day": None,
    }
    r = await capped.client.put(
        f"/v1/admin/participants/{pid}/preferences",
        json={"quiet_start": NO_QUIET_HOURS["quiet_start"]},
        headers=AUTH,
    )
    assert r.status_code == 422, r.text


async def test_upgrading_treats_stored_21_to_8_as_not_chosen_and_keeps_other_choices(
    database_url: str, tmp_path: Path
) -> None:
    await migrate_as_released_before(
        database_url,
        SERVICE.schema,
        Path(str(SERVICE.migrations)),
        "0004_preferences_follow_study.sql",
        tmp_path,
    )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SERVICE.schema})
    try:
        await conn.execute("INSERT INTO preferences (participant_id) VALUES ('P-defaulted')")
        await conn.execute(
            """INSERT INTO preferences (participant_id, language, quiet_start, quiet_end)
               VALUES ('P-chose', 'es', '22:00', '06:30')"""
        )
        applied = await migrate(
            database_url, schema=SERVICE.schema, directories=[SERVICE.migrations]
        )
        assert applied[0] == "retention/0004_preferences_follow_study.sql"  # then any later
        rows = await conn.fetch(
            "SELECT participant_id, language, quiet_start, quiet_end FROM preferences"
            " ORDER BY participant_id"
        )
        assert [tuple(r) for r in rows] == [
            ("P-chose", "es", time(22, 0), time(6, 30)),
            ("P-defaulted", "en", None, None),
        ]
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE preferences SET quiet_end = NULL")
    finally:
        await conn.close()

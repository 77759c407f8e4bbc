"""The scheduler against real PostgreSQL and broker: due and missed exactly once, restart-safe;
late answers flagged; compliance, CSV and FHIR export for site staff."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from epro import due_and_missed
from epro_support import Epro, daily_protocol, running_epro
from helpers import eventually, read_topic
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ZONE = "America/New_York"


def protocol_now(tmp_path: Path, now: datetime) -> Path:
    # "open": due 30 min ago, window 2 h; "gone": due 3 h ago, window 1 h (already expired)
    return daily_protocol(
        tmp_path / "protocol.json",
        ZONE,
        {"open": (now - timedelta(minutes=30), 120), "gone": (now - timedelta(hours=3), 60)},
    )


async def outbox_drained(epro: Epro) -> bool:
    return not await epro.sql("SELECT 1 FROM outbox WHERE sent_at IS NULL")


async def events_for(kafka: str, topic: Topic, participant: str) -> list[dict[str, object]]:
    return await read_topic(kafka, topic, match=lambda v: v.get("participant_id") == participant)


async def test_due_and_missed_are_emitted_exactly_once_across_ticks_and_restarts(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    protocol = protocol_now(tmp_path, now)
    async with running_epro(kafka, database_url, protocol) as (epro, pool):
        participant, _ = await epro.enroll(timezone=ZONE, enrolled_at=now - timedelta(days=3))
        assert await due_and_missed.tick(pool, now) == (
            1,
            1,
        )  # "gone" expired before it was seen: missed only
        assert await due_and_missed.tick(pool, now) == (0, 0)
        both = await asyncio.gather(
            due_and_missed.tick(pool, now + timedelta(minutes=1)),
            due_and_missed.tick(pool, now + timedelta(minutes=1)),
        )
        assert both == [(0, 0), (0, 0)]
    async with running_epro(kafka, database_url, protocol) as (epro, pool):  # a restart
        assert await due_and_missed.tick(pool, now + timedelta(minutes=2)) == (0, 0)
        assert await due_and_missed.tick(pool, now + timedelta(hours=2)) == (0, 1)  # "open" closes
        assert await due_and_missed.tick(pool, now + timedelta(hours=2)) == (0, 0)
        await eventually(lambda: outbox_drained(epro))
    due = await events_for(kafka, Topic.EPRO_DUE, participant)
    missed = await events_for(kafka, Topic.EPRO_MISSED, participant)
    assert len(due) == 1
    assert len(missed) == 2
    assert due[0]["occurrence_id"] in {m["occurrence_id"] for m in missed}
    due_at = datetime.fromisoformat(str(due[0]["due_at"]))
    assert due_at == now - timedelta(minutes=30)


async def test_concurrent_schedulers_share_the_work_without_duplicates(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with running_epro(kafka, database_url, protocol_now(tmp_path, now)) as (epro, pool):
        people = [
            (await epro.enroll(timezone=ZONE, enrolled_at=now - timedelta(days=3)))[0]
            for _ in range(5)
        ]
        results = await asyncio.gather(*(due_and_missed.tick(pool, now, batch=2) for _ in range(4)))
        assert sum(d for d, _ in results) == 5
        assert sum(m for _, m in results) == 5
        rows = await epro.sql(
            "SELECT count(*) AS n FROM occurrences WHERE participant_id = ANY($1)", people
        )
        assert rows[0]["n"] == 10


async def test_late_answer_is_accepted_flagged_and_counted_in_compliance(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with running_epro(kafka, database_url, protocol_now(tmp_path, now)) as (epro, pool):
        participant, app = await epro.enroll(
            site="site-x", timezone=ZONE, enrolled_at=now - timedelta(days=3)
        )
        await due_and_missed.tick(pool, now)
        occ = {
            r["schedule_id"]: str(r["occurrence_id"])
            for r in await epro.sql(
                "SELECT * FROM occurrences WHERE participant_id = $1", participant
            )
        }

        def body(schedule: str, pain: int) -> dict[str, object]:
            return {
                "response_id": f"00000000-0000-4000-8000-00000000000{pain}",
                "questionnaire_id": "pain-nrs",
                "questionnaire_version": 1,
                "occurrence_id": occ[schedule],
                "authored_at": datetime.now(UTC).isoformat(),
                "answers": {"pain": pain},
            }

        on_time = await epro.submit(app, body("open", 2))
        late = await epro.submit(app, body("gone", 6))
        assert (on_time.json()["response"]["on_time"], on_time.json()["response"]["flags"]) == (
            True,
            [],
        )
        assert (
            late.status_code,
            late.json()["response"]["on_time"],
            late.json()["response"]["flags"],
        ) == (201, False, ["late"])
        wrong = await epro.submit(
            app,
            {
                **body("open", 3),
                "questionnaire_id": "phq-9",
                "answers": {f"phq9-{i}": "0" for i in range(1, 10)},
            },
        )
        assert wrong.json()["error"]["details"][0]["code"] == "questionnaire_mismatch"

        nurse, other_site, monitor = (
            await epro.staff("site-x"),
            await epro.staff("site-y"),
            await epro.staff("site-y", "monitor"),
        )
        report = (await epro.client.get("/v1/compliance", headers=nurse)).json()
        [row] = [p for p in report["participants"] if p["participant_id"] == participant]
        assert (
            row["on_time"],
            row["late"],
            row["missed"],
            row["closed"],
            row["on_time_percent"],
        ) == (1, 1, 0, 2, 50.0)
        assert report["sites"] == [
            {
                "site_id": "site-x",
                **{
                    k: row[k]
                    for k in ("on_time", "late", "missed", "open", "closed", "on_time_percent")
                },
            }
        ]
        assert (
            await epro.client.get("/v1/compliance?site=site-x", headers=other_site)
        ).status_code == 403
        assert (
            await epro.client.get(f"/v1/participants/{participant}/responses", headers=other_site)
        ).status_code == 404
        assert (
            await epro.client.get("/v1/compliance?site=site-x", headers=monitor)
        ).status_code == 200

        csv_text = (
            await epro.client.get(f"/v1/participants/{participant}/responses.csv", headers=nurse)
        ).text
        assert csv_text.splitlines()[0].startswith("participant_id,response_id,version,current")
        assert len(csv_text.splitlines()) == 1 + 4  # two answers and two scores
        bundle = (
            await epro.client.get(
                f"/v1/participants/{participant}/fhir/QuestionnaireResponse", headers=nurse
            )
        ).json()
        assert [e["resource"]["status"] for e in bundle["entry"]] == ["completed", "completed"]
        questionnaire = (
            await epro.client.get("/v1/fhir/Questionnaire/phq-9", headers=nurse)
        ).json()
        assert questionnaire["url"] == "urn:trialstream:questionnaire:phq-9"


async def test_answer_made_in_time_but_uploaded_after_the_window_counts_as_on_time(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with running_epro(kafka, database_url, protocol_now(tmp_path, now)) as (epro, pool):
        participant, app = await epro.enroll(
            site="site-z", timezone=ZONE, enrolled_at=now - timedelta(days=3)
        )
        await due_and_missed.tick(pool, now)
        assert await due_and_missed.tick(pool, now + timedelta(hours=3)) == (
            0,
            1,
        )  # "open" closed as missed
        [occ] = await epro.sql(
            "SELECT occurrence_id FROM occurrences WHERE participant_id = $1 AND schedule_id = 'open'",
            participant,
        )
        r = await epro.submit(app, {
            "response_id": "00000000-0000-4000-8000-0000000000aa", "questionnaire_id": "pain-nrs",
            "questionnaire_version": 1, "occurrence_id": str(occ["occurrence_id"]),
            "authored_at": (now - timedelta(minutes=10)).isoformat(), "answers": {"pain": 1},
        })  # fmt: skip
        assert (r.json()["response"]["on_time"], r.json()["response"]["flags"]) == (
            True,
            ["uploaded_after_window"],
        )
        nurse = await epro.staff("site-z")
        report = (
            await epro.client.get(f"/v1/compliance?participant_id={participant}", headers=nurse)
        ).json()
        [row] = report["participants"]
        assert (row["on_time"], row["late"], row["missed"]) == (1, 0, 1)

"""Upload -> archive and broker, on the real broker and real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
from helpers import read_topic, reading, serving, unique_id
from ingest.main import create_app
from ingest.settings import IngestSettings
from staff_tokens import JWKS, staff_auth
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ADMIN = "test-admin-token"
# The admin token only bootstraps the identity service: here a platform admin signs in.
ADMIN_AUTH = staff_auth(None, "platform_admin", subject="ingest-admin", name="Ingest Admin")


@pytest.fixture
async def ingest(kafka: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        max_readings_per_request=50,
        kafka_session_timeout_ms=2000,
    )
    async with serving(create_app(settings)) as client:
        yield client


async def enrol(
    client: httpx.AsyncClient, site: str = "site-a", admin: dict[str, str] = ADMIN_AUTH
) -> tuple[str, str, str]:
    participant, device = unique_id("P"), unique_id("dev")
    r = await client.post(
        "/v1/admin/participants",
        json={"participant_id": participant, "site_id": site},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/admin/devices",
        json={"device_id": device, "participant_id": participant},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return participant, device, r.json()["token"]


async def archived(database_url: str, participant: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(
            await conn.fetch("SELECT * FROM ingest.readings WHERE participant_id = $1", participant)
        )
    finally:
        await conn.close()


async def test_uploaded_readings_are_published_and_archived(
    ingest: httpx.AsyncClient, kafka: str, database_url: str
) -> None:
    participant, device, token = await enrol(ingest)
    batch = [reading(participant, device, value=70 + i) for i in range(10)]
    r = await ingest.post(
        "/v1/readings", json={"readings": batch}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 10

    rows = await archived(database_url, participant)  # in the archive before the answer
    assert sorted(row["value"] for row in rows) == [70.0 + i for i in range(10)]
    on_topic = await read_topic(
        kafka, Topic.READINGS, match=lambda v: v.get("participant_id") == participant
    )
    assert len(on_topic) == 10
    received = {row["event_id"]: row["received_at"] for row in rows}
    for event in on_topic:  # the archive and the event agree on when ingest received it
        assert (
            datetime.fromisoformat(event["occurred_at"]) == received[uuid.UUID(event["event_id"])]
        )


async def test_an_upload_is_summarised_once_per_participant_and_a_retry_adds_nothing(
    ingest: httpx.AsyncClient, kafka: str
) -> None:
    """Retention reads these instead of every reading (decision 0092): one record per
    upload with the count, the span and the hours with data; an upload retried whole is
    all duplicates, so it publishes neither readings nor another summary."""
    participant, device, token = await enrol(ingest)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    batch = [
        reading(participant, device, measured_at=start + timedelta(minutes=25 * i))
        for i in range(6)  # 0, 25, ... 125 min: three clock hours
    ]
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        r = await ingest.post("/v1/readings", json={"readings": batch}, headers=auth)
        assert r.status_code == 200, r.text
    summaries = await read_topic(
        kafka, Topic.READING_SUMMARIES, match=lambda v: v.get("participant_id") == participant
    )
    assert len(summaries) == 1, summaries
    [summary] = summaries
    assert summary["readings"] == 6
    assert summary["devices"] == [device]
    assert [datetime.fromisoformat(h) for h in summary["hours"]] == [
        start + timedelta(hours=h) for h in range(3)
    ]
    assert datetime.fromisoformat(summary["last_measured_at"]) == start + timedelta(minutes=125)


async def test_the_archive_row_and_the_event_agree_on_every_field(
    ingest: httpx.AsyncClient, kafka: str, database_url: str
) -> None:
    """The archive is written from the event's JSON: units converted, offsets and
    microseconds kept, fractions exact."""
    participant, device, token = await enrol(ingest)
    berlin = timezone(timedelta(hours=1))
    batch = [
        reading(
            participant,
            device,
            metric="body-temperature",
            value=99.5,
            unit="F",
            measured_at=datetime.now(berlin).replace(microsecond=123456) - timedelta(minutes=2),
        ),
        reading(participant, device, value=71.123456789, measured_at=datetime.now(UTC)),
    ]
    r = await ingest.post(
        "/v1/readings", json={"readings": batch}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.json()["accepted"] == 2, r.text
    rows = {row["event_id"]: row for row in await archived(database_url, participant)}
    events = await read_topic(
        kafka, Topic.READINGS, match=lambda v: v.get("participant_id") == participant
    )
    assert len(events) == len(rows) == 2
    for event in events:
        row = rows[uuid.UUID(event["event_id"])]
        assert {
            "participant_id": row["participant_id"],
            "device_id": row["device_id"],
            "metric": row["metric"],
            "value": row["value"],
            "unit": row["unit"],
            "measured_at": row["measured_at"],
            "received_at": row["received_at"],
        } == {
            "participant_id": event["participant_id"],
            "device_id": event["device_id"],
            "metric": event["metric"],
            "value": event["value"],
            "unit": event["unit"],
            "measured_at": datetime.fromisoformat(event["measured_at"]),
            "received_at": datetime.fromisoformat(event["occurred_at"]),
        }
    temperature = next(e for e in events if e["metric"] == "body-temperature")
    assert (temperature["unit"], temperature["value"]) == ("C", pytest.approx(37.5))


async def test_enrolment_refuses_a_timezone_that_is_not_an_iana_name(
    ingest: httpx.AsyncClient,
) -> None:
    admin = ADMIN_AUTH
    for zone in ("Europe", "localtime", "Mars/Olympus"):
        r = await ingest.post(
            "/v1/admin/participants",
            json={"participant_id": unique_id("P"), "site_id": "site-a", "timezone": zone},
            headers=admin,
        )
        assert r.status_code == 422, (zone, r.text)
        assert r.json()["error"]["details"][0]["field"] == "timezone"


async def test_duplicate_upload_is_stored_and_published_once(
    ingest: httpx.AsyncClient, kafka: str, database_url: str
) -> None:
    participant, device, token = await enrol(ingest)
    batch = [reading(participant, device) for _ in range(3)]
    auth = {"Authorization": f"Bearer {token}"}
    first = await ingest.post("/v1/readings", json={"readings": batch}, headers=auth)
    retry = await ingest.post("/v1/readings", json={"readings": batch}, headers=auth)
    assert first.json()["accepted"] == 3
    assert retry.status_code == 200
    assert retry.json()["duplicates"] == 3
    assert retry.json()["accepted"] == 0

    on_topic = await read_topic(
        kafka, Topic.READINGS, match=lambda v: v.get("participant_id") == participant
    )
    assert len(on_topic) == 3
    assert len(await archived(database_url, participant)) == 3


async def test_an_event_id_reused_for_another_reading_is_refused_not_lost_as_a_duplicate(
    ingest: httpx.AsyncClient, kafka: str, database_url: str
) -> None:
    participant, device, token = await enrol(ingest)
    auth = {"Authorization": f"Bearer {token}"}
    first = reading(participant, device, value=71)
    reused = {**reading(participant, device, value=140), "event_id": first["event_id"]}
    same_again = dict(first)
    r = await ingest.post("/v1/readings", json={"readings": [first]}, headers=auth)
    assert r.json()["accepted"] == 1
    r = await ingest.post("/v1/readings", json={"readings": [reused]}, headers=auth)
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 0, 1), body
    assert body["results"][0]["errors"] == [
        {
            "field": "event_id",
            "code": "event_id_conflict",
            "message": "this event_id was already used for a different reading; give each"
            " reading its own",
        }
    ]
    r = await ingest.post("/v1/readings", json={"readings": [same_again]}, headers=auth)
    assert r.json()["results"][0]["status"] == "duplicate"
    # within one upload: the second use of an id with other content is refused too
    fresh = reading(participant, device, value=72)
    clash = {**reading(participant, device, value=73), "event_id": fresh["event_id"]}
    r = await ingest.post("/v1/readings", json={"readings": [fresh, clash, fresh]}, headers=auth)
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "rejected", "duplicate"]
    assert r.json()["results"][1]["errors"][0]["code"] == "event_id_conflict"

    rows = await archived(database_url, participant)
    assert sorted(row["value"] for row in rows) == [71.0, 72.0]
    on_topic = await read_topic(
        kafka, Topic.READINGS, match=lambda v: v.get("participant_id") == participant
    )
    assert sorted(e["value"] for e in on_topic) == [71.0, 72.0]


async def test_bad_records_are_rejected_precisely_and_good_ones_kept(
    ingest: httpx.AsyncClient, database_url: str
) -> None:
    participant, device, token = await enrol(ingest)
    future = datetime.now(UTC) + timedelta(hours=2)
    batch = [
        reading(participant, device, value=71),
        reading(participant, device, metric="blood-glucose"),
        reading(participant, device, unit="bpm"),
        reading(participant, device, value=900),
        reading(participant, device, measured_at=future),
        {"event_id": "not-a-uuid", "participant_id": participant},
        reading(participant, device, metric="body-temperature", value=100.4, unit="F"),
        reading("P-someone-else", device),
    ]
    r = await ingest.post(
        "/v1/readings", json={"readings": batch}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (2, 6)
    codes = {
        res["index"]: {e["field"]: e["code"] for e in res.get("errors", [])}
        for res in body["results"]
    }
    assert codes[1] == {"metric": "enum"}
    assert codes[2] == {"unit": "wrong_unit"}
    assert codes[3] == {"value": "implausible_value"}
    assert codes[4] == {"measured_at": "in_future"}
    assert "event_id" in codes[5]
    assert "measured_at" in codes[5]
    assert codes[7] == {"participant_id": "participant_not_enrolled_to_device"}

    rows = await archived(database_url, participant)
    temps = [row["value"] for row in rows if row["metric"] == "body-temperature"]
    assert temps == [38.0]  # 100.4 F converted, stored in Open mHealth's unit C


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"readings": []}, 401, "missing_credentials"),
        ({"Authorization": "Bearer nope"}, {"readings": []}, 401, "invalid_credentials"),
    ],
)
async def test_bad_credentials_are_refused(
    ingest: httpx.AsyncClient, headers: dict[str, str], body: Any, status: int, code: str
) -> None:
    r = await ingest.post("/v1/readings", json=body, headers=headers)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


async def test_whole_request_errors_have_json_bodies(ingest: httpx.AsyncClient) -> None:
    participant, device, token = await enrol(ingest)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    malformed = await ingest.post("/v1/readings", content=b'{"readings": [', headers=auth)
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "malformed_json"
    nested = b'{"readings": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    too_deep = await ingest.post("/v1/readings", content=nested, headers=auth)
    assert (too_deep.status_code, too_deep.json()["error"]["code"]) == (422, "malformed_json")
    too_many = await ingest.post(
        "/v1/readings", json={"readings": [reading(participant, device)] * 51}, headers=auth
    )
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "too_many_readings"
    not_a_list = await ingest.post("/v1/readings", json={"readings": "x"}, headers=auth)
    assert not_a_list.status_code == 422
    assert not_a_list.json()["error"]["details"][0]["field"] == "readings"


async def test_revoked_device_cannot_upload(ingest: httpx.AsyncClient) -> None:
    participant, device, token = await enrol(ingest)
    r = await ingest.post(f"/v1/admin/devices/{device}/revoke", headers=ADMIN_AUTH)
    assert r.status_code == 200
    r = await ingest.post(
        "/v1/readings",
        json={"readings": [reading(participant, device)]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401


async def test_a_device_over_its_rate_gets_429_and_nobody_else_is_slowed(
    kafka: str, database_url: str
) -> None:
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token=ADMIN,
        oidc_jwks=JWKS,
        rate_limit_per_second=0.5,
        rate_limit_burst=2,
    )
    async with serving(create_app(settings)) as client:
        # two calls each, by two people: nobody is over the limit while enrolling
        flooder = await enrol(client, admin=staff_auth(None, "platform_admin"))
        quiet = await enrol(client, admin=staff_auth(None, "platform_admin"))
        codes = []
        for i in range(3):
            batch = [reading(flooder[0], flooder[1], value=60 + i)]
            r = await client.post(
                "/v1/readings",
                json={"readings": batch},
                headers={"Authorization": f"Bearer {flooder[2]}"},
            )
            codes.append(r.status_code)
        assert codes == [200, 200, 429]
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        other = await client.post(
            "/v1/readings",
            json={"readings": [reading(quiet[0], quiet[1])]},
            headers={"Authorization": f"Bearer {quiet[2]}"},
        )
        assert other.status_code == 200, other.text
    # the refused request wrote nothing: the two accepted readings only
    assert sorted(row["value"] for row in await archived(database_url, flooder[0])) == [60, 61]


async def test_the_admin_token_only_bootstraps_the_identity_service(
    ingest: httpx.AsyncClient,
) -> None:
    body = {"participant_id": unique_id("P"), "site_id": "site-a"}
    r = await ingest.post(
        "/v1/admin/participants", json=body, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (401, "bootstrap_only")
    assert "sign in as a person" in r.json()["error"]["message"]

"""The "done when" of issue 18's erasure, end to end against `trialstream up`, over HTTP
as users would: a participant of a study that enables consent, ePRO, telehealth and
retention signs the consent, uploads readings, answers a diary with free text, has a
visit booked and rescheduled (a reason typed by staff), a contact address, and is nudged;
staff then ask for erasure. Once every service reports done, no marker typed into the
platform is left in any table of any schema, any record of any topic (key, value,
headers) or any file of the archive tier, the participant's readings are gone (the study
keeps no collected data), and `trialstream audit verify` is OK.

What "personal data" means here is what decision 0086 promises: free text, contact
addresses, nudge bodies and staff reasons go; the participant id stays as the
pseudonymous key of what is kept (e.g. the erasure's own audit record). Every scan is
first run before the erasure and must find the data there: a scan that cannot find
anything proves nothing."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pyarrow.parquet as pq
import pytest
from helpers import heart_rate_minutes, publish_to, topics_holding
from platform_up import INGEST, signed_in, up_platform, wait_for
from trialstream.events.epro import QuestionnaireDue
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ADMIN = "e2e-erasure-admin"
CONSENT, EPRO, TELEHEALTH, RETENTION = (
    "http://127.0.0.1:8009",
    "http://127.0.0.1:8004",
    "http://127.0.0.1:8005",
    "http://127.0.0.1:8006",
)
STUDY, SITE = "ERASE-E2E", "site-erase"
RUN = uuid.uuid4().hex[:8]
MARK = f"zq{RUN}"  # in every marker: one needle finds them all
DIARY_TEXT = f"{MARK} rash since the party at Marie Durand's, 12 rue de la Paix"
DIARY_NOTES = f"{MARK} please call my daughter on 06 12 34 56 78"
ADDRESS = f"{MARK}.marie.durand@example.org"
RESCHEDULE = f"{MARK} at her sister's in Lyon until Friday"


def diary_due(pid: str) -> QuestionnaireDue:
    now = datetime.now(UTC)
    return QuestionnaireDue(
        participant_id=pid,
        occurrence_id=uuid.uuid4(),
        questionnaire_id="daily-diary",
        questionnaire_version=2,
        due_at=now - timedelta(seconds=1),
        expires_at=now + timedelta(hours=3),
    )


def study_file(path: Path, diary_at: datetime) -> Path:
    """The study: every module that holds personal data, consent first, a daily diary;
    erasure deletes collected data too (`keep_collected_data: false`)."""
    path.write_text(
        f"""study_id: {STUDY}
title: Erasure end to end
sponsor: Test sponsor
sites:
  - {{id: {SITE}, name: Erasure clinic, timezone: UTC, languages: [en]}}
modules: [ingest, consent, epro, telehealth, retention, monitoring, anomaly]
visits:
  - {{name: Day 1, day: 1, minus_days: 0, plus_days: 3, type: video}}
questionnaires:
  - schedule_id: diary
    questionnaire_id: daily-diary
    questionnaire_version: 2
    rule: {{kind: daily, at: "{diary_at:%H:%M}", window_minutes: 180}}
retention:
  languages: [en]
  quiet_start: "00:00"
  quiet_end: "00:00"
erasure: {{keep_collected_data: false, regulatory_years: 25}}
"""
    )
    return path


@dataclass
class Running:
    kafka: str
    database_url: str
    workdir: Path


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("up")
    study = study_file(workdir / "erase.yaml", datetime.now(UTC) + timedelta(minutes=1))
    env = {
        "TRIALSTREAM_ADMIN_TOKEN": ADMIN,
    }
    for platform in up_platform(workdir, ["--study", str(study), "--no-simulate"], env):
        yield Running(platform.banner("Kafka"), platform.banner("PostgreSQL"), workdir)


class Client:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(
        self, method: str, url: str, token: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return self.http.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}
        )

    def ok(self, method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
        r = self.call(method, url, token, body)
        assert r.status_code < 300, f"{method} {url}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def eventually(
        self, what: str, method: str, url: str, token: str, body: dict[str, Any] | None = None
    ) -> Any:
        """Retry until 2xx: services learn enrolments, studies and consents from topics."""
        last: list[httpx.Response] = []

        def done() -> httpx.Response | None:
            r = self.call(method, url, token, body)
            last[:] = [r]
            return r if r.status_code < 300 else None

        r = wait_for(what, done, 60, lambda: last and (last[0].status_code, last[0].text))
        return r.json() if r.content else None


# -- the scans -------------------------------------------------------------------------


async def tables_holding(database_url: str, needle: str, *also: str) -> list[str]:
    """schema.table of every table, in every schema of the database, with a row whose
    text holds `needle` (and each of `also`; partitions and detached day tables included)."""
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r'"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%'"
        )
        assert len(tables) > 30, tables  # every service's schema is there
        found = []
        for t in tables:
            name = f'"{t["nspname"]}"."{t["relname"]}"'
            where = " AND ".join(f"strpos(r::text, ${i}) > 0" for i in range(1, len(also) + 2))
            query = f"SELECT count(*) FROM {name} AS r WHERE {where}"  # noqa: S608
            if await conn.fetchval(query, needle, *also):
                found.append(f"{t['nspname']}.{t['relname']}")
        return found
    finally:
        await conn.close()


def files_holding(root: Path, needle: str) -> list[str]:
    """Every file under `root` whose content holds `needle`: Parquet files are decoded
    (their columns are compressed), any other file is read as bytes."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []:
        if path.suffix == ".parquet":
            text = str(pq.read_table(io.BytesIO(path.read_bytes())).to_pylist())
            hit = needle in text
        else:
            hit = needle.encode() in path.read_bytes()
        if hit:
            found.append(str(path.relative_to(root)))
    return found


def audit_verify(database_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    trialstream = Path(sys.executable).with_name("trialstream")
    return subprocess.run(
        [str(trialstream), "audit", "verify"],
        cwd=workdir,
        env=env | {"DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- the test --------------------------------------------------------------------------


def test_an_erased_participant_leaves_no_personal_data_in_tables_topics_or_files(
    up: Running,
) -> None:
    files = up.workdir / ".trialstream"  # the archive tier, exports, logs
    with httpx.Client(timeout=30) as http:
        c = Client(http)
        admin = signed_in(http, ADMIN, f"admin-{RUN}", None, "platform_admin")
        study_admin = signed_in(http, ADMIN, f"sa-{RUN}", None, "study_admin", STUDY)
        nurse_id = f"nurse-{RUN}"
        nurse = signed_in(http, ADMIN, nurse_id, SITE, "site_staff", STUDY)
        investigator = signed_in(http, ADMIN, f"inv-{RUN}", SITE, "investigator", STUDY)
        pid, device = f"P-{RUN}", f"w-{RUN}"

        # Enrolment and a watch (ingest), once ingest has read the study.
        c.eventually(
            "enrolment",
            "POST",
            f"{INGEST}/v1/admin/participants",
            nurse,
            {"participant_id": pid, "study_id": STUDY, "site_id": SITE},
        )
        watch = c.ok(
            "POST",
            f"{INGEST}/v1/admin/devices",
            nurse,
            {"device_id": device, "participant_id": pid},
        )["token"]

        # Consent: the document, the participant's app signs every scope.
        c.eventually(
            "consent document",
            "POST",
            f"{CONSENT}/v1/consent/documents",
            study_admin,
            {
                "study_id": STUDY,
                "version": 1,
                "language": "en",
                "format": "markdown",
                "title": "Consent",
                "sections": [{"id": "all", "title": "All", "body": "You may stop any time."}],
                "scopes": ["wearable", "epro", "telehealth"],
                "questions": [],
            },
        )
        consent_app = c.eventually(
            "consent credential",
            "POST",
            f"{CONSENT}/v1/participants/{pid}/consent-credential",
            nurse,
        )["token"]
        shown = c.ok("GET", f"{CONSENT}/v1/consent/document?language=en", consent_app)
        proof = c.ok("POST", f"{CONSENT}/v1/consent/reauth", consent_app)["reauth_proof"]
        c.ok(
            "POST",
            f"{CONSENT}/v1/consent/signatures",
            consent_app,
            {
                "document_version": shown["document_version"],
                "language": "en",
                "document_sha256": shown["sha256"],
                "scopes": ["wearable", "epro", "telehealth"],
                "reauth_proof": proof,
            },
        )
        signed = datetime.now(UTC)

        # Readings, once ingest has read the consent.
        readings = heart_rate_minutes(pid, device, signed + timedelta(seconds=1), [72.0, 74.0])
        accepted = c.eventually(
            "readings",
            "POST",
            f"{INGEST}/v1/readings",
            watch,
            {"readings": readings},
        )
        assert accepted["accepted"] == 2, accepted

        # An export of the participant's readings (Parquet) lands in the platform's files.
        export = c.ok(
            "POST",
            f"{INGEST}/v1/exports",
            study_admin,
            {"study_id": STUDY, "format": "parquet", "participant_id": pid},
        )

        def exported() -> bool:
            job = c.ok("GET", f"{INGEST}/v1/exports/{export['export_id']}", study_admin)
            assert job["status"] != "failed", job
            return bool(job["status"] == "done")

        wait_for("the export", exported, 60)
        export_url = f"{INGEST}/v1/exports/{export['export_id']}"
        export_file = c.ok("GET", export_url, study_admin)["files"][0]["name"]

        # Retention: a contact address, no quiet hours.
        c.eventually(
            "preferences",
            "PUT",
            f"{RETENTION}/v1/admin/participants/{pid}/preferences",
            nurse,
            {
                "channel": "email",
                "address": ADDRESS,
                "language": "en",
                "timezone": "UTC",
                "quiet_start": "00:00",
                "quiet_end": "00:00",
            },
        )

        # ePRO: the diary with free text, from the participant's app.
        epro_app = c.eventually(
            "ePRO credential", "POST", f"{EPRO}/v1/admin/participants/{pid}/app-credentials", admin
        )["token"]
        c.eventually(
            "diary answer",
            "POST",
            f"{EPRO}/v1/responses",
            epro_app,
            {
                "response_id": str(uuid.uuid4()),
                "questionnaire_id": "daily-diary",
                "questionnaire_version": 2,
                "language": "en",
                "authored_at": datetime.now(UTC).isoformat(),
                "answers": {
                    "wellbeing": 4,
                    "new-symptoms": True,
                    "symptoms": ["rash", "other"],
                    "symptoms-other": DIARY_TEXT,
                    "took-medication": False,
                    "notes": DIARY_NOTES,
                },
            },
        )

        # Telehealth: the nurse is a clinician all day; the video visit booked, then
        # rescheduled with a reason that names people and places.
        c.ok("POST", f"{TELEHEALTH}/v1/admin/staff", admin, {"staff_id": nurse_id, "site_id": SITE})
        hours = [{"weekday": d, "start": "00:00", "end": "23:59"} for d in range(7)]
        c.ok("PUT", f"{TELEHEALTH}/v1/staff/{nurse_id}/weekly-hours", nurse, {"hours": hours})
        slots = c.eventually("slots", "GET", f"{TELEHEALTH}/v1/participants/{pid}/slots", nurse)
        first, second = [s for s in slots["slots"] if s["staff_id"] == nurse_id][:2]
        booking = c.ok(
            "POST",
            f"{TELEHEALTH}/v1/bookings",
            nurse,
            {
                "visit_id": slots["visit"]["visit_id"],
                "staff_id": nurse_id,
                "starts_at": first["starts_at"],
            },
        )
        c.ok(
            "POST",
            f"{TELEHEALTH}/v1/bookings/{booking['booking_id']}/reschedule",
            nurse,
            {"starts_at": second["starts_at"], "reason": RESCHEDULE},
        )

        # Retention nudges: the diary falls due (announced as ePRO's scheduler does; the
        # scheduler's own timing is ePRO's tests').
        asyncio.run(publish_to(up.kafka, Topic.EPRO_DUE, [(pid, diary_due(pid))]))

        def nudged() -> list[dict[str, Any]] | None:
            r = c.call("GET", f"{RETENTION}/v1/participants/{pid}/nudges", nurse)
            return r.json()["nudges"] if r.status_code == 200 and r.json()["nudges"] else None

        nudges = wait_for("a nudge", nudged, 60)
        assert nudges

        # Before erasure every scan finds what it looks for: the scans can fail.
        tables = asyncio.run(tables_holding(up.database_url, MARK))
        assert {"epro.responses", "retention.preferences"} <= set(tables), tables
        assert any(t.startswith("telehealth.") for t in tables), tables
        topics = asyncio.run(topics_holding(up.kafka, pid))
        assert topics.pop("(records read)") > 0
        assert len(topics) >= 3, topics  # the scan reads every topic: the id is on many
        assert topics_holding_marker_before(up.kafka) == {}
        assert [f for f in files_holding(files, pid) if f.endswith(".parquet")], "no export"
        # (a reading's row: its id with the participant's; a bare event id kept to drop
        # duplicates, e.g. monitoring's reading_rollup_seen, says nothing of anyone)
        kept = asyncio.run(tables_holding(up.database_url, readings[0]["event_id"], pid))
        assert any(t.startswith("ingest.readings") for t in kept), kept

        # Staff ask for erasure (a fresh sign-in is the step-up), with a legal basis.
        requested = c.ok(
            "POST",
            f"{CONSENT}/v1/participants/{pid}/erasure",
            investigator,
            {"legal_basis": "art17-1a"},
        )
        assert requested["keep_collected_data"] is False, requested

        def complete() -> dict[str, Any] | None:
            r = c.ok("GET", f"{CONSENT}/v1/participants/{pid}/erasure", nurse)
            return r if r["complete"] else None

        status = wait_for(
            "erasure complete",
            complete,
            60,
            lambda: c.call("GET", f"{CONSENT}/v1/participants/{pid}/erasure", nurse).text,
        )
        services = set(status["services"])
        assert {"consent", "ingest", "epro", "telehealth", "retention"} <= services, status
        assert all(s["done"] for s in status["services"].values())
        # The export that held their readings is withdrawn: files deleted, links 410.
        assert c.ok("GET", export_url, study_admin)["expired_at"] is not None
        gone = c.call("GET", f"{export_url}/files/{export_file}", study_admin)
        assert gone.status_code == 410, gone.text
        assert "erasure" in gone.json()["error"]["message"], gone.text

    # After: no marker anywhere, the readings gone from every tier, the audit intact.
    assert asyncio.run(tables_holding(up.database_url, MARK)) == []
    after = asyncio.run(topics_holding(up.kafka, MARK))
    assert after.pop("(records read)") > 0
    assert after == {}
    assert files_holding(files, MARK) == []
    # the archive's Parquet tier (none of this participant's days is old enough to be
    # tiered in a test: ingest refuses readings measured before the consent; the tier's
    # own erasure is tests/integration/erasure/test_ingest_archive_erasure.py)
    assert files_holding(files / "archive", pid) == []
    assert [f for f in files_holding(files, pid) if f.endswith((".parquet", ".csv"))] == []
    readings_left = asyncio.run(tables_holding(up.database_url, readings[0]["event_id"], pid))
    assert readings_left == [], readings_left
    verified = audit_verify(up.database_url, up.workdir)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout, verified.stdout


def topics_holding_marker_before(kafka: str) -> dict[str, int]:
    """Before erasure, no topic holds a marker either (topics never carry free text,
    addresses or notes: a contract rule since issue 1)."""
    found = asyncio.run(topics_holding(kafka, MARK))
    found.pop("(records read)")
    return found

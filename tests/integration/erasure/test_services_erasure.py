"""Each service's erasure (decision 0086) against its own migrated schema on real
PostgreSQL, run as the service's role through `trialstream.erasure.erase_one` (what the
subscriber does): the identifying data is gone, what the study keeps stays, the
`erasure.completed` entry is on the chain, the chain verifies, and `ErasureDone` is in
the outbox. Seeded with SQL: the collection flows themselves are each service's tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from anomaly import erasure as anomaly_erasure
from anomaly.service_info import SERVICE as ANOMALY
from epro import erasure as epro_erasure
from epro.service_info import SERVICE as EPRO
from monitoring import erasure as monitoring_erasure
from monitoring.service_info import SERVICE as MONITORING
from retention import erasure as retention_erasure
from retention.service_info import SERVICE as RETENTION
from telehealth import erasure as telehealth_erasure
from telehealth.service_info import SERVICE as TELEHEALTH
from trialstream import audit
from trialstream.audit_verify import verify_chain
from trialstream.db import create_pool, migrate
from trialstream.erasure import Eraser, erase_one
from trialstream.events.erasures import ErasureRequested, LegalBasis
from trialstream.services import ServiceInfo

pytestmark = pytest.mark.integration
P, OTHER = "P-erase", "P-stays"
SECRET = "Marie Durand, 12 rue de la Paix"
NOW = datetime.now(UTC)


def request(keep: bool) -> ErasureRequested:
    return ErasureRequested(
        participant_id=P,
        request_id=uuid.uuid4(),
        legal_basis=LegalBasis.CONSENT_WITHDRAWN,
        requested_by="staff",
        keep_collected_data=keep,
    )


@asynccontextmanager
async def schema(database_url: str, info: ServiceInfo) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, schema=info.schema, directories=[info.migrations])
    pool = await create_pool(database_url, schema=info.schema, as_service_role=True)
    try:
        yield pool
    finally:
        await pool.close()


async def erased_by(
    pool: asyncpg.Pool, info: ServiceInfo, erase: Eraser, keep: bool
) -> dict[str, int]:
    async with pool.acquire() as conn, conn.transaction():
        done = await erase_one(conn, info.name, request(keep), erase)
    async with pool.acquire() as conn:
        report = await verify_chain(conn, info.schema)
        assert report.broken is None, report
        entry = await conn.fetchval(
            "SELECT new FROM audit_trail WHERE action = 'erasure.completed' AND entity_id = $1", P
        )
        assert json.loads(entry)["legal_basis"] == "art17-1b"
        outbox = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1", f"{P}|{info.name}"
        )
        assert outbox == 1
    return done.erased


async def mentions(pool: asyncpg.Pool, needle: str) -> list[str]:
    tables = await pool.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    )
    found = []
    for t in tables:
        q = f'SELECT count(*) FROM "{t["relname"]}" AS r WHERE r::text LIKE $1'  # noqa: S608
        if await pool.fetchval(q, f"%{needle}%"):
            found.append(t["relname"])
    return found


@pytest.mark.parametrize("keep", [True, False])
async def test_epro_free_text_goes_and_scores_stay_if_kept(database_url: str, keep: bool) -> None:
    async with schema(database_url, EPRO) as pool:
        definition = {
            "items": [{"link_id": "pain", "type": "rating"}, {"link_id": "notes", "type": "text"}]
        }
        await pool.execute(
            "INSERT INTO questionnaires (questionnaire_id, version, digest, definition)"
            " VALUES ('diary', 1, 'd', $1::jsonb)",
            json.dumps(definition),
        )
        for who in (P, OTHER):
            await pool.execute(
                "INSERT INTO participants (participant_id, site_id, timezone, enrolled_at)"
                " VALUES ($1, 's', 'UTC', now())",
                who,
            )
            await pool.execute(
                "INSERT INTO app_credentials (token_hash, participant_id) VALUES ($1, $1)", who
            )
            for version, reason in ((1, None), (2, f"typo, said {SECRET}")):
                await pool.execute(
                    "INSERT INTO responses (response_id, version, participant_id, questionnaire_id,"
                    " questionnaire_version, language, authored_at, answers, scores, on_time,"
                    " flags, author, reason, request_digest) VALUES ($1, $2, $3, 'diary', 1, 'en',"
                    " now(), $4::jsonb, '{\"total\": 3}'::jsonb, true, '{}', 'participant', $5, 'x')",
                    uuid.uuid5(uuid.NAMESPACE_OID, who),
                    version,
                    who,
                    json.dumps({"pain": 3, "notes": f"I live with {SECRET}"}),
                    reason,
                )
        erased = await erased_by(pool, EPRO, epro_erasure.erase, keep)
        assert erased["app_credentials"] == 1
        assert erased["response_versions_free_text"] == 2
        left = await pool.fetch(
            "SELECT answers, scores FROM responses WHERE participant_id = $1", P
        )
        if keep:
            assert [json.loads(r["answers"]) for r in left] == [{"pain": 3}, {"pain": 3}]
        else:
            assert left == []
        assert await mentions(pool, SECRET) == ["responses"]  # the other participant's
        assert not await pool.fetchval(
            "SELECT count(*) FROM responses AS r WHERE participant_id = $1 AND r::text LIKE $2",
            P,
            f"%{SECRET}%",
        )
        assert (
            await pool.fetchval("SELECT count(*) FROM responses WHERE participant_id = $1", OTHER)
            == 2
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # still append-only otherwise
            await pool.execute("UPDATE responses SET reason = 'x' WHERE participant_id = $1", OTHER)


async def test_retention_address_and_nudge_bodies_go(database_url: str) -> None:
    async with schema(database_url, RETENTION) as pool:
        await pool.execute(
            "INSERT INTO preferences (participant_id, channel, address) VALUES ($1, 'email', $2)",
            P,
            "marie.durand@example.org",
        )
        nudge = uuid.uuid4()
        await pool.execute(
            "INSERT INTO nudges (nudge_id, participant_id, kind, trigger_event_id, status,"
            " language, tone, body) VALUES ($1, $2, 'epro-missed', $1, 'sent', 'en', 'warm', $3)",
            nudge,
            P,
            f"Hello {SECRET}, your diary is waiting",
        )
        await pool.execute(
            "INSERT INTO local_deliveries (nudge_id, participant_id, channel, body)"
            " VALUES ($1, $2, 'email', $3)",
            nudge,
            P,
            f"Hello {SECRET}",
        )
        erased = await erased_by(pool, RETENTION, retention_erasure.erase, True)
        assert erased == {
            "addresses": 1,
            "nudge_bodies": 1,
            "local_deliveries": 1,
            "audit_texts": 0,
        }
        assert await mentions(pool, SECRET) == []
        assert await mentions(pool, "marie.durand") == []
        assert await pool.fetchval("SELECT status FROM nudges") == "sent"  # the record stays


async def test_telehealth_feeds_and_free_text_go(database_url: str) -> None:
    async with schema(database_url, TELEHEALTH) as pool:
        await pool.execute(
            "INSERT INTO participants (participant_id, site_id, baseline_date) VALUES ($1, 's', now())",
            P,
        )
        await pool.execute("INSERT INTO staff (staff_id, site_id) VALUES ('nurse', 's')")
        visit = uuid.uuid4()
        await pool.execute(
            "INSERT INTO visits (visit_id, participant_id, name, visit_type, sequence, window_start,"
            " window_end, status, cancel_reason) VALUES ($1, $2, 'week-1', 'video', 1, $3, $4,"
            " 'cancelled', $5)",
            visit,
            P,
            NOW,
            NOW + timedelta(days=2),
            f"at {SECRET}",
        )
        await pool.execute(
            "INSERT INTO bookings (booking_id, visit_id, staff_id, staff_key, starts_at, ends_at,"
            " status, room_token, reason, created_by, scheduled_at) SELECT $1, $2, 'nurse',"
            " staff_key, $3, $4, 'cancelled', 'room-secret', $5, 'nurse', now() FROM staff",
            uuid.uuid4(),
            visit,
            NOW,
            NOW + timedelta(minutes=30),
            f"moved to {SECRET}",
        )
        await pool.execute(
            "INSERT INTO calendar_feeds (token_hash, owner_kind, owner_id, created_by)"
            " VALUES ('feed-hash', 'participant', $1, 'nurse')",
            P,
        )
        erased = await erased_by(pool, TELEHEALTH, telehealth_erasure.erase, True)
        assert erased["calendar_feeds"] == 1
        assert erased["bookings_free_text"] == 1
        assert await mentions(pool, SECRET) == []
        assert await mentions(pool, "room-secret") == []
        assert await pool.fetchval("SELECT status FROM visits") == "cancelled"


async def test_monitoring_notes_are_tombstoned_and_alerts_stay(database_url: str) -> None:
    async with schema(database_url, MONITORING) as pool:
        await pool.execute(
            "INSERT INTO alerts (alert_id, participant_id, kind, metric, severity, rule,"
            " detected_at, window_start, window_end, observed, model_version, explanation,"
            " ack_note, episode_id) VALUES ($1, $2, 'clinical', 'heart-rate', 'high', 'r', now(),"
            " now(), now(), '{}'::jsonb, 'm', 'e', $3, $1)",
            uuid.uuid4(),
            P,
            f"called {SECRET}",
        )
        erased = await erased_by(pool, MONITORING, monitoring_erasure.erase, True)
        assert erased["alert_notes"] == 1
        assert await mentions(pool, SECRET) == []
        assert await pool.fetchval("SELECT ack_note FROM alerts") == "[erased]"


async def test_anomaly_checkpoint_goes(database_url: str) -> None:
    async with schema(database_url, ANOMALY) as pool:
        await pool.execute(
            "INSERT INTO participant_state (participant_id, state) VALUES ($1, '{}'::jsonb)", P
        )
        erased = await erased_by(pool, ANOMALY, anomaly_erasure.erase, True)
        assert erased == {"checkpoints": 1, "audit_texts": 0}
        assert not await pool.fetchval("SELECT count(*) FROM participant_state")


async def test_audit_free_text_is_erased_and_the_chain_still_verifies(database_url: str) -> None:
    async with schema(database_url, ANOMALY) as pool:
        async with pool.acquire() as conn, conn.transaction():
            entry = await audit.record(
                conn,
                actor="admin",
                action="participant.withdrawn",
                entity="participant",
                entity_id=P,
                erasable_reason=f"moving in with {SECRET}",
                subject=P,
            )
        assert entry.reason is not None
        assert entry.reason.startswith("sha256:")
        assert SECRET not in entry.reason
        assert await audit.erasable_text(pool, entry.seq) == f"moving in with {SECRET}"
        erased = await erased_by(pool, ANOMALY, anomaly_erasure.erase, True)
        assert erased["audit_texts"] == 1
        assert await audit.erasable_text(pool, entry.seq) is None
        assert await mentions(pool, SECRET) == []

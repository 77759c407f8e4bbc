"""KRI use cases: values for the API, and the periodic evaluation that publishes breaches.

The evaluation runs on every replica; a transaction-scoped advisory lock lets one of them
work per tick, and the KRI state rows are locked while a transition is decided, so a
breach is published once even if two evaluations overlap."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from trialstream.db import DbConnection
from trialstream.events.monitoring import KriBreached, KriRecovered, KriThreshold
from trialstream.events.topics import Topic
from trialstream.loops import skip_or_raise
from trialstream.outbox import enqueue

from monitoring.rbm import repository
from monitoring.rbm.flags import FlagRules
from monitoring.rbm.kri import (
    KRIS,
    KriConfig,
    KriInputs,
    ParticipantFacts,
    participant_inputs,
    present,
    transition,
)
from monitoring.rbm.service import check_diaries

log = structlog.get_logger(__name__)


def _facts(row: asyncpg.Record) -> ParticipantFacts:
    return ParticipantFacts(
        participant_id=row["participant_id"],
        site_id=row["site_id"],
        timezone=row["timezone"],
        enrolled_at=row["enrolled_at"],
        withdrawn_at=row["withdrawn_at"],
        wear_slots=row["slots"],
        epro_on_time=row["epro_on_time"],
        epro_due=row["epro_due"],
        visits_in_window=row["visits_in_window"],
        visits_decided=row["visits_decided"],
        ack_minutes=[float(m) for m in row["ack_minutes"]],
        dq_events=row["dq_events"],
    )


async def _inputs(
    conn: DbConnection | asyncpg.Pool,
    cfg: KriConfig,
    now: datetime,
    site: str | None = None,
    participant: str | None = None,
    study: str | None = None,
) -> tuple[dict[str, KriInputs], dict[str, tuple[str, KriInputs]]]:
    """(site -> pooled inputs, participant -> (site, inputs)), of one study or all."""
    rows = await repository.facts(
        conn,
        site,
        participant,
        now,
        now - timedelta(days=cfg.window_days),
        now - timedelta(days=cfg.epro_window_days),
        now - timedelta(days=cfg.visit_window_days),
        study,
    )
    sites: dict[str, KriInputs] = defaultdict(KriInputs)
    people: dict[str, tuple[str, KriInputs]] = {}
    for row in rows:
        try:
            facts = _facts(row)
            inputs = participant_inputs(facts, now, cfg)
        except Exception as exc:  # one participant's bad data: the site's KRIs go on
            skip_or_raise("monitoring-kris", str(row["participant_id"]), exc)
            continue
        people[facts.participant_id] = (facts.site_id, inputs)
        sites[facts.site_id].add(inputs)
    return sites, people


async def site_kris(
    pool: asyncpg.Pool,
    cfg: KriConfig,
    site: str,
    now: datetime | None = None,
    study: str | None = None,
) -> dict[str, Any]:
    """A site's KRIs pooled over its participants of `study` (None: every study)."""
    now = now or datetime.now(UTC)
    sites, people = await _inputs(pool, cfg, now, site=site, study=study)
    return {
        "site_id": site,
        "kris": present(sites.get(site, KriInputs()).values(), cfg),
        "participants": [
            {"participant_id": p, "kris": present(inputs.values(), cfg)}
            for p, (_, inputs) in people.items()
        ],
    }


async def participant_kris(
    pool: asyncpg.Pool, cfg: KriConfig, participant: str, now: datetime | None = None
) -> dict[str, Any] | None:
    now = now or datetime.now(UTC)
    _, people = await _inputs(pool, cfg, now, participant=participant)
    if participant not in people:
        return None
    site, inputs = people[participant]
    return {"participant_id": participant, "site_id": site, "kris": present(inputs.values(), cfg)}


async def evaluate(
    pool: asyncpg.Pool, cfg: KriConfig, rules: FlagRules, now: datetime | None = None
) -> int | None:
    """One evaluation tick: KRI states and breach/recovery events, plus the periodic re-check
    of recent diaries. Returns the number of events, or None if another replica holds the tick."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.try_kri_lock(conn):
            return None
        sites, people = await _inputs(conn, cfg, now)
        current: dict[tuple[str, str, str], tuple[str, str | None, float | None]] = {}
        for site, inputs in sites.items():
            for kri, value in inputs.values().items():
                current[("site", site, kri)] = (site, None, value)
        for participant, (site, inputs) in people.items():
            for kri, value in inputs.values().items():
                current[("participant", participant, kri)] = (site, participant, value)
        events = await _transitions(conn, cfg, current, now)
        await check_diaries(conn, rules, since=now - timedelta(days=3))
        await repository.purge(conn, now - timedelta(days=max(cfg.window_days, 3) + 2))
    return events


async def _transitions(
    conn: DbConnection,
    cfg: KriConfig,
    current: dict[tuple[str, str, str], tuple[str, str | None, float | None]],
    now: datetime,
) -> int:
    keys = sorted(current)
    state = await repository.lock_kri_state(conn, [(*k, current[k][0]) for k in keys])
    updates: list[tuple[Any, ...]] = []
    events: list[tuple[str | None, KriBreached | KriRecovered]] = []
    for key in keys:
        scope, scope_id, kri = key
        site, participant, value = current[key]
        threshold = cfg.thresholds[kri]
        status = threshold.status(value)
        old = state[key]
        opened, breached_at = old["breach_open"], old["breached_at"]
        change = transition(opened, status)
        common: dict[str, Any] = {
            "scope": scope,
            "site_id": site,
            "participant_id": participant,
            "kri": kri,
            "label": KRIS[kri].label,
            "value": value,
            "unit": KRIS[kri].unit,
            "threshold": KriThreshold(**threshold.as_dict()),
            "status": status,
        }
        if change == "breach":
            opened, breached_at = True, now
            events.append((participant or site, KriBreached(breached_at=now, **common)))
        elif change == "recover":
            opened = False
            events.append(
                (
                    participant or site,
                    KriRecovered(breached_at=breached_at or now, recovered_at=now, **common),
                )
            )
        updates.append((scope, scope_id, kri, status, value, opened, breached_at))
    await repository.update_kri_state(conn, updates)
    await enqueue(conn, Topic.KRI_BREACHES, events)
    return len(events)

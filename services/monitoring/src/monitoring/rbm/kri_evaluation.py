"""KRI use cases: values for the API, and the periodic evaluation that publishes breaches
and each (study, site)'s snapshot (rbm/snapshots.py). Each study's participants are
pooled and judged apart, by that study's thresholds.

The evaluation runs on every replica; a transaction-scoped advisory lock lets one of them
work per tick, and the KRI state rows are locked while a transition is decided, so a
breach is published once even if two evaluations overlap."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from trialstream.db import DbConnection
from trialstream.events.monitoring import KriBreached, KriRecovered, KriThreshold
from trialstream.events.topics import Topic
from trialstream.loops import skip_or_raise
from trialstream.outbox import enqueue
from trialstream.studies import StudyRegistry

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
from monitoring.rbm.snapshots import snapshots
from monitoring.rbm.study_limits import configs_to_evaluate
from monitoring.timeline_readings import forget_rollups_before

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


@dataclass
class Pooled:
    """KRI inputs of the selected participants: pooled per (study, site), and each one's own."""

    sites: dict[tuple[str, str], KriInputs] = field(default_factory=lambda: defaultdict(KriInputs))
    people: dict[str, tuple[str, str, KriInputs]] = field(default_factory=dict)


async def _inputs(
    conn: DbConnection | asyncpg.Pool,
    cfg: KriConfig,
    now: datetime,
    site: str | None = None,
    participant: str | None = None,
    study: str | None = None,
) -> Pooled:
    """Of one study or all; a site's participants are pooled per study, never across
    studies (two studies may each have a site of the same id)."""
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
    pooled = Pooled()
    for row in rows:
        try:
            facts = _facts(row)
            inputs = participant_inputs(facts, now, cfg)
        except Exception as exc:  # one participant's bad data: the site's KRIs go on
            skip_or_raise("monitoring-kris", str(row["participant_id"]), exc)
            continue
        pooled.people[facts.participant_id] = (row["study_id"], facts.site_id, inputs)
        pooled.sites[(row["study_id"], facts.site_id)].add(inputs)
    return pooled


async def site_kris(
    pool: asyncpg.Pool,
    cfg: KriConfig,
    site: str,
    study: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A site's KRIs pooled over its participants of `study`, judged by `cfg` (the
    study's thresholds: study_limits.config_for)."""
    now = now or datetime.now(UTC)
    pooled = await _inputs(pool, cfg, now, site=site, study=study)
    return {
        "study_id": study,
        "site_id": site,
        "kris": present(pooled.sites.get((study, site), KriInputs()).values(), cfg),
        "participants": [
            {"participant_id": p, "kris": present(inputs.values(), cfg)}
            for p, (_, _, inputs) in pooled.people.items()
        ],
    }


async def study_site_kris(
    pool: asyncpg.Pool, cfg: KriConfig, study: str, now: datetime
) -> dict[str, dict[str, float | None]]:
    """Each site's KRI values in `study` (pooled over its participants; no one's own)."""
    pooled = await _inputs(pool, cfg, now, study=study)
    return {site: inputs.values() for (s, site), inputs in pooled.sites.items() if s == study}


async def participant_kris(
    pool: asyncpg.Pool, cfg: KriConfig, participant: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """One participant's KRIs, judged by `cfg` (their study's thresholds)."""
    now = now or datetime.now(UTC)
    pooled = await _inputs(pool, cfg, now, participant=participant)
    if participant not in pooled.people:
        return None
    study, site, inputs = pooled.people[participant]
    return {
        "participant_id": participant,
        "study_id": study,
        "site_id": site,
        "kris": present(inputs.values(), cfg),
    }


# (study, scope, scope id, kri) -> (site, participant or None, value)
Current = dict[tuple[str, str, str, str], tuple[str, str | None, float | None]]


async def evaluate(
    pool: asyncpg.Pool,
    cfg: KriConfig,
    rules: FlagRules,
    studies: StudyRegistry,
    now: datetime | None = None,
) -> int | None:
    """One evaluation tick: KRI states and breach/recovery events per (study, site) and
    participant, each study judged by its own thresholds (study_limits), plus the periodic
    re-check of recent diaries, and a snapshot per (study, site) on the kri-snapshots topic.
    Returns the number of breach and recovery events, or None if another replica holds
    the tick."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.try_kri_lock(conn):
            return None
        pooled = await _inputs(conn, cfg, now)
        in_study = {study for study, _ in pooled.sites}
        configs = configs_to_evaluate(cfg, sorted(in_study), studies)
        current: Current = {}
        for (study, site), inputs in pooled.sites.items():
            if study in configs:
                for kri, value in inputs.values().items():
                    current[(study, "site", site, kri)] = (site, None, value)
        for participant, (study, site, inputs) in pooled.people.items():
            if study in configs:
                for kri, value in inputs.values().items():
                    current[(study, "participant", participant, kri)] = (site, participant, value)
        events = await _transitions(conn, configs, current, now)
        work = await repository.open_work(conn)
        made = snapshots(pooled.sites, pooled.people, configs, work, now)
        await enqueue(conn, Topic.KRI_SNAPSHOTS, made)
        await check_diaries(conn, rules, since=now - timedelta(days=3))
        await repository.purge(conn, now - timedelta(days=max(cfg.window_days, 3) + 2))
        await forget_rollups_before(conn, now - timedelta(days=cfg.rollup_days))
    return events


async def _transitions(
    conn: DbConnection, configs: dict[str, KriConfig], current: Current, now: datetime
) -> int:
    keys = sorted(current)
    state = await repository.lock_kri_state(conn, [(*k, current[k][0]) for k in keys])
    updates: list[tuple[Any, ...]] = []
    events: list[tuple[str | None, KriBreached | KriRecovered]] = []
    for key in keys:
        study, scope, scope_id, kri = key
        site, participant, value = current[key]
        threshold = configs[study].thresholds[kri]
        status = threshold.status(value)
        old = state[key]
        opened, breached_at = old["breach_open"], old["breached_at"]
        change = transition(opened, status)
        common: dict[str, Any] = {
            "study_id": study,
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
        updates.append((study, scope, scope_id, kri, status, value, opened, breached_at))
    await repository.update_kri_state(conn, updates)
    await enqueue(conn, Topic.KRI_BREACHES, events)
    return len(events)

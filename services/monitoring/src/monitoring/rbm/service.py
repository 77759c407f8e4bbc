"""Risk-based monitoring use cases: stream processing, flags, KRIs and their episodes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
from trialstream.db import DbConnection
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.monitoring import DiscrepancyFlagRaised
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import ReadingsSummarised
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitStatus
from trialstream.outbox import enqueue

from monitoring import repository as monitoring_repository
from monitoring.rbm import flags as rules_
from monitoring.rbm import repository
from monitoring.rbm.flags import FlagCandidate, FlagRules, SummaryBatch

DEFAULT_RULES = FlagRules()


async def raise_flags(conn: DbConnection, candidates: Sequence[FlagCandidate]) -> int:
    """Insert the candidates that open a new episode and publish each once (outbox, same
    transaction). Returns how many were raised."""
    if not candidates:
        return 0
    raised = await repository.raise_flags(conn, candidates)
    if not raised:
        return 0
    sites = await repository.participant_state(conn, [f["participant_id"] for f in raised])
    events = [
        (
            f["participant_id"],
            DiscrepancyFlagRaised(
                flag_id=f["flag_id"],
                participant_id=f["participant_id"],
                site_id=sites[f["participant_id"]][0] if f["participant_id"] in sites else None,
                kind=f["kind"],
                reason=f["reason"],
                evidence=f["evidence"],
                raised_at=f["raised_at"],
            ),
        )
        for f in raised
    ]
    await enqueue(conn, Topic.DISCREPANCY_FLAGS, events)
    for f in raised:  # last writes of the transaction: the audit chain's lock is held to commit
        await monitoring_repository.audit(
            conn,
            actor="system:rbm",
            action="flag.raised",
            entity="flag",
            entity_id=str(f["flag_id"]),
            old_status=None,
            new_status="open",
            note=f"{f['kind']}: {f['reason']}",
        )
    return len(raised)


def _reading_state(
    batch: SummaryBatch, rules: FlagRules, found: list[rules_.Jump]
) -> repository.ReadingState:
    """What the batch writes, deduplicated per key with numpy."""
    slot_p, slot_s = rules_.slots(batch, rules.slot_seconds)
    # the newest series end per (participant, device, metric) among the jump metrics
    j = np.flatnonzero(np.isin(batch.metric, [r.metric for r in rules.jumps]))
    last_keys = rules_.records("p,d,m", batch.participant[j], batch.device[j], batch.metric[j])
    order = np.lexsort((batch.last[j], last_keys["m"], last_keys["d"], last_keys["p"]))
    ordered = last_keys[order]
    is_last = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        is_last[:-1] = ordered[1:] != ordered[:-1]
    last = j[order[is_last]]
    # first and last measured per (device, participant)
    pairs, pair_of = rules_.unique_rows(rules_.records("d,p", batch.device, batch.participant))
    first_t = np.full(len(pairs), np.inf)
    last_t = np.full(len(pairs), -np.inf)
    np.minimum.at(first_t, pair_of, batch.first)
    np.maximum.at(last_t, pair_of, batch.last)
    ts = rules_._ts
    return repository.ReadingState(
        slot_participants=slot_p,
        slot_starts=slot_s,
        last_participants=batch.participant[last].tolist(),
        last_devices=batch.device[last].tolist(),
        last_metrics=batch.metric[last].tolist(),
        last_measured_at=[ts(t) for t in batch.last[last]],
        last_values=batch.last_value[last].tolist(),
        jump_participants=[x.participant for x in found],
        jump_devices=[x.device for x in found],
        jump_metrics=[x.metric for x in found],
        jump_at=[x.at for x in found],
        jump_deltas=[x.delta for x in found],
        jump_seconds=[x.seconds for x in found],
        pair_devices=pairs["d"].tolist(),
        pair_participants=pairs["p"].tolist(),
        pair_first_measured=[ts(t) for t in first_t],
        pair_last_measured=[ts(t) for t in last_t],
    )


async def process_summaries_for_rbm(
    conn: DbConnection, summaries: Sequence[ReadingsSummarised], rules: FlagRules = DEFAULT_RULES
) -> int:
    """Wear slots, device pairs and jumps from one batch of reading summaries, and the
    discrepancy flags they raise (clock skew, shared device, after withdrawal, implausible
    jumps), in one transaction. Idempotent: redelivered summaries change no state and raise
    nothing new. Returns the number of flags raised."""
    batch = SummaryBatch.of(summaries)
    if not len(batch):
        return 0
    participants = np.unique(batch.participant).tolist()
    async with conn.transaction():
        state = await repository.participant_state(conn, participants)
        jump_metrics = [r.metric for r in rules.jumps]
        previous = (
            await repository.last_readings(conn, participants, jump_metrics)
            if np.isin(batch.metric, jump_metrics).any()
            else {}
        )
        found = rules_.jumps(batch, rules, previous)
        shared = await repository.write_reading_state(conn, _reading_state(batch, rules, found))
        now = datetime.now(UTC)
        candidates = rules_.clock_skew(batch, rules)
        candidates += rules_.after_withdrawal(
            batch, {p: w for p, (_, w) in state.items() if w is not None}
        )
        for device, names in shared:
            candidates += rules_.shared_device(device, names, now)
        if found:
            candidates += await _jump_flags(conn, rules, found)
        return await raise_flags(conn, candidates)


async def _jump_flags(
    conn: DbConnection, rules: FlagRules, found: Sequence[rules_.Jump]
) -> list[FlagCandidate]:
    by_metric = {r.metric: r for r in rules.jumps}
    keys = sorted({(x.participant, x.device, x.metric) for x in found})
    window = max(r.window_seconds for r in rules.jumps)
    since = min(x.at for x in found) - timedelta(seconds=window)
    history: dict[tuple[str, str, str], list[rules_.Jump]] = defaultdict(list)
    for r in await repository.recent_jumps(conn, keys, since):
        key = (r["participant_id"], r["device_id"], r["metric"])
        history[key].append(rules_.Jump(*key, r["at"], r["delta"], r["seconds"]))
    out = []
    newest: dict[tuple[str, str, str], datetime] = {}
    for x in found:
        key = (x.participant, x.device, x.metric)
        newest[key] = max(newest.get(key, x.at), x.at)
    for key, end in newest.items():
        rule = by_metric[key[2]]
        recent = [
            j for j in history[key] if end - timedelta(seconds=rule.window_seconds) <= j.at <= end
        ]
        if len(recent) >= rule.repeats:
            out.append(rules_.jump_flag(rule, key[0], key[1], recent, datetime.now(UTC)))
    return out


async def apply_participants(conn: DbConnection, events: Sequence[ParticipantState]) -> int:
    """Participant state (site, timezone, withdrawal). A withdrawal also looks back: readings
    measured after it that arrived before the withdrawal did raise the flag now."""
    latest = {e.participant_id: e for e in events}
    if not latest:
        return 0
    async with conn.transaction():
        await repository.upsert_participants(
            conn,
            [
                (e.participant_id, e.site_id, e.timezone, e.status, e.occurred_at, e.withdrawn_at)
                for e in latest.values()
            ],
        )
        withdrawn = [p for p, e in latest.items() if e.status == "withdrawn"]
        if not withdrawn:
            return 0
        candidates = [
            rules_.withdrawal_flag(
                r["participant_id"],
                r["withdrawn_at"],
                measured_at=r["measured_at"],
                device_ids=list(r["devices"]),
                readings=None,
                evidence_at=latest[r["participant_id"]].occurred_at,
            )
            for r in await repository.seen_after_withdrawal(conn, withdrawn)
        ]
        return await raise_flags(conn, candidates)


async def apply_epro_occurrences(
    conn: DbConnection, events: Sequence[QuestionnaireDue | QuestionnaireMissed]
) -> None:
    if not events:
        return
    await repository.upsert_occurrences(
        conn,
        [
            (
                e.occurrence_id,
                e.participant_id,
                e.questionnaire_id,
                e.due_at,
                e.expires_at,
                isinstance(e, QuestionnaireMissed),
            )
            for e in {e.occurrence_id: e for e in events}.values()
        ],
    )


async def apply_epro_responses(
    conn: DbConnection, events: Sequence[ResponseSubmitted], rules: FlagRules = DEFAULT_RULES
) -> int:
    """Timeliness of first responses (KRI), and diary activity checked against the wearable."""
    firsts = {e.occurrence_id: e for e in events if e.version == 1 and e.occurrence_id is not None}
    diary = {
        e.response_id: e
        for e in sorted(events, key=lambda e: e.version)
        if e.questionnaire_id == rules.diary_questionnaire
        and rules.diary_activity_score in e.scores
    }
    if not firsts and not diary:
        return 0
    async with conn.transaction():
        if firsts:
            await repository.answer_occurrences(
                conn,
                [
                    (o, e.participant_id, e.questionnaire_id, e.on_time, e.response_id)
                    for o, e in firsts.items()
                ],
            )
        if not diary:
            return 0
        await repository.upsert_diary(
            conn,
            [
                (
                    e.response_id,
                    e.participant_id,
                    e.occurrence_id,
                    e.scores[rules.diary_activity_score],
                    e.version,
                    e.submitted_at,
                )
                for e in diary.values()
            ],
        )
        return await check_diaries(conn, rules, since=datetime.min.replace(tzinfo=UTC), ids=diary)


async def check_diaries(
    conn: DbConnection,
    rules: FlagRules,
    *,
    since: datetime,
    ids: Sequence[UUID] | dict[UUID, Any] | None = None,
) -> int:
    """Flag diary days that report no activity on a day with many steps. Run on each diary
    response and again periodically (steps uploaded after the diary count too)."""
    rows = await repository.diary_steps(
        conn, rules.diary_activity_at_most, since, None if ids is None else list(ids)
    )
    candidates = [
        c
        for r in rows
        if (
            c := rules_.epro_contradicts_wearable(
                r["participant_id"],
                r["local_day"].isoformat(),
                float(r["activity"]),
                float(r["steps"]),
                rules,
                str(r["response_id"]),
                datetime.now(UTC),
            )
        )
        is not None
    ]
    return await raise_flags(conn, candidates)


def _done_at(e: VisitChanged) -> datetime | None:
    return (e.starts_at or e.occurred_at) if e.status is VisitStatus.COMPLETED else None


async def apply_visits(conn: DbConnection, events: Sequence[VisitChanged]) -> None:
    if not events:
        return
    latest: dict[UUID, VisitChanged] = {}
    for e in events:
        if e.visit_id not in latest or e.occurred_at >= latest[e.visit_id].occurred_at:
            latest[e.visit_id] = e
    await repository.upsert_visits(
        conn,
        [
            (
                e.visit_id,
                e.participant_id,
                e.site_id,
                str(e.status),
                e.window_start,
                e.window_end,
                _done_at(e),
                e.occurred_at,
            )
            for e in latest.values()
        ],
    )

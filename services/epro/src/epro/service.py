"""ePRO use cases: publishing definitions, submitting and correcting responses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from trialstream import audit
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.epro import ResponseSubmitted
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue
from trialstream.validation import FieldError

from epro import repository
from epro.assignments import audit_assigned
from epro.domain import withdrawal
from epro.domain.definitions import Catalog, ItemType, Questionnaire
from epro.domain.responses import Answers, ResponseVersion, Scores
from epro.domain.schedules import Schedule
from epro.domain.scoring import SafetySignal
from epro.domain.submissions import (
    Checked,
    Correction,
    Submission,
    check,
    check_time,
    digest,
    invalid,
    response_event_id,
    timeliness,
)


def conflict(code: str, message: str) -> Refused:
    return Refused(Kind.CONFLICT, code, message)


def withdrawn(withdrawn_at: datetime, field: str | None = None) -> Refused:
    """The participant withdrew consent: nothing authored after `withdrawn_at` is collected.
    403, not 409: nothing the app can change makes the request acceptable (decision 0014).
    `field` is the request field that is after the withdrawal, if one is."""
    details = []
    if field is not None:
        details.append(
            {
                "field": field,
                "code": "after_withdrawal",
                "message": f"after the withdrawal at {withdrawn_at.isoformat()}",
            }
        )
    return Refused(
        Kind.FORBIDDEN,
        withdrawal.REFUSED,
        f"The participant withdrew from the study at {withdrawn_at.astimezone(UTC).isoformat()};"
        " responses authored after that are not accepted.",
        details,
    )


async def participants_enrolled(
    pool: asyncpg.Pool,
    events: Sequence[ParticipantState],
    schedules: Mapping[str, Sequence[Schedule]],
) -> None:
    """Participants from ingest's enrolments get their study's schedules (`schedules` by
    study id; the default study's are the protocol file's); each schedule a participant
    newly gets is an audit entry (the system assigned it). A withdrawal stops their
    schedules and closes the occurrences it cut short, audited once (decision 0014)."""
    async with pool.acquire() as conn, conn.transaction():
        done = await repository.upsert_participants(conn, events, schedules)
        closed = await repository.close_cut_short(conn, list(done.withdrawn))
        for participant_id, at in done.withdrawn.items():
            await audit.record(
                conn,
                actor="system:epro",
                action="schedule.stopped_by_withdrawal",
                entity="participant_schedule",
                entity_id=participant_id,
                new={"withdrawn_at": at, "occurrences_closed": closed.get(participant_id, 0)},
            )
        await audit_assigned(conn, done.assigned, {e.participant_id: e.study_id for e in events})


async def visits_completed(pool: asyncpg.Pool, rows: Sequence[tuple[str, UUID, datetime]]) -> None:
    """A completed visit anchors the participant's visit-relative schedules from then on."""
    async with pool.acquire() as conn, conn.transaction():
        for participant_id, visit_id, at in await repository.add_visit_anchors(conn, rows):
            await audit.record(
                conn,
                actor="system:epro",
                action="schedule.anchored_to_visit",
                entity="participant_schedule",
                entity_id=participant_id,
                new={"visit_id": visit_id, "anchored_at": at},
            )


@dataclass(frozen=True)
class Stored:
    created: bool  # False: an identical earlier submission (a retry)
    response: ResponseVersion


async def publish_questionnaires(
    pool: asyncpg.Pool,
    catalog: Catalog,
    found: Sequence[Questionnaire],
    *,
    actor: str = "system:epro",
    actor_detail: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Store definitions; a published (id, version) never changes (a 409 refusal if it would)."""
    outcome = {}
    async with pool.acquire() as conn, conn.transaction():
        for q in found:
            result = await repository.publish_questionnaire(conn, q)
            if result == "conflict":
                raise conflict(
                    "published_version_is_immutable",
                    f"{q.id} v{q.version} is already published with other content; publish v{q.version + 1}",
                )
            outcome[f"{q.id}@{q.version}"] = result
        for q in found:
            if outcome[f"{q.id}@{q.version}"] == "published":
                await audit.record(
                    conn,
                    actor=actor,
                    actor_detail=actor_detail,
                    action="questionnaire.published",
                    entity="questionnaire",
                    entity_id=f"{q.id}@{q.version}",
                    new={"title": q.title, "digest": q.digest()},
                )
    for q in found:
        catalog.add(q)
    return outcome


async def refresh(pool: asyncpg.Pool, catalog: Catalog) -> None:
    for q in await repository.questionnaires(pool):
        catalog.add(q)


def _alerts(
    participant_id: str, row: ResponseVersion, checked: Checked, signals: Sequence[SafetySignal]
) -> list[AlertRaised]:
    scores = ", ".join(
        f"{s.name} {s.value}" + (f" ({s.band})" if s.band else "") for s in checked.scores
    )
    at = row.authored_at
    return [
        AlertRaised(
            event_id=response_event_id(row.response_id, row.version, s.rule.rule),
            participant_id=participant_id,
            kind=AlertKind.EPRO_SAFETY,
            severity=Severity.HIGH,
            rule=s.rule.rule,
            detected_at=at,
            window_start=at,
            window_end=at,
            observed=[float(s.value)],
            threshold=float(s.rule.above),
            model_version=f"{checked.questionnaire.id}@{checked.questionnaire.version}",
            explanation=f"{s.rule.explanation} Answer value {s.value}"
            + (f"; {scores}" if scores else "")
            + f"; response {row.response_id} v{row.version} authored {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC.",
        )
        for s in signals
    ]


class _Raced(Exception):
    """A concurrent request stored the same (response_id, version) first."""


async def _store(
    conn: DbConnection, row: ResponseVersion, checked: Checked, new_signals: Sequence[SafetySignal]
) -> None:
    """The response row, its event and any safety alert: one transaction (outbox)."""
    if not await repository.insert_response(conn, row):
        raise _Raced
    study_id = await repository.study_of(conn, row.participant_id)
    event = ResponseSubmitted(
        event_id=response_event_id(row.response_id, row.version),
        participant_id=row.participant_id,
        study_id=study_id,
        response_id=row.response_id,
        version=row.version,
        questionnaire_id=row.questionnaire_id,
        questionnaire_version=row.questionnaire_version,
        occurrence_id=row.occurrence_id,
        submitted_at=row.authored_at,
        on_time=row.on_time,
        flags=row.flags,
        scores={s.name: float(s.value) for s in checked.scores},
    )
    key = row.participant_id
    await enqueue(conn, Topic.EPRO_RESPONSES, [(key, event)])
    alerts = _alerts(key, row, checked, new_signals)
    await enqueue(
        conn, Topic.ALERTS, [(key, a.model_copy(update={"study_id": study_id})) for a in alerts]
    )


async def _timing(conn: DbConnection, participant_id: str, s: Submission) -> tuple[bool, list[str]]:
    if s.occurrence_id is None:
        return timeliness(s.authored_at, None, None)
    occ = await repository.lock_occurrence(conn, s.occurrence_id, participant_id)
    if occ is None:
        raise invalid(
            [
                FieldError(
                    "occurrence_id", "unknown_occurrence", "no such occurrence for this participant"
                )
            ]
        )
    if (occ["questionnaire_id"], occ["questionnaire_version"]) != (
        s.questionnaire_id,
        s.questionnaire_version,
    ):
        raise invalid(
            [
                FieldError(
                    "occurrence_id",
                    "questionnaire_mismatch",
                    f"the occurrence is for {occ['questionnaire_id']} v{occ['questionnaire_version']}",
                )
            ]
        )
    on_time, flags = timeliness(s.authored_at, occ["due_at"], occ["expires_at"])
    if occ["response_id"] is not None:
        return on_time, [*flags, "repeat"]  # an earlier response already answered it
    await repository.answer_occurrence(conn, s.occurrence_id, s.response_id, on_time)
    if on_time and occ["status"] == "missed":
        flags = [*flags, "uploaded_after_window"]  # answered in time, offline until after it
    return on_time, flags


async def _refuse_if_withdrawn(
    conn: DbConnection, participant_id: str, authored_at: datetime, field: str | None = None
) -> None:
    """Share-locks the participant, so a withdrawal being recorded waits for this response
    (and closes its occurrence after) or is seen by it. `field`: the request field that
    carried `authored_at`, named in the error."""
    withdrawn_at = await repository.withdrawn_at(conn, participant_id)
    if withdrawn_at is not None and withdrawal.refuses(authored_at, withdrawn_at):
        raise withdrawn(withdrawn_at, field)


async def submit(
    pool: asyncpg.Pool, catalog: Catalog, participant_id: str, s: Submission, *, max_skew: timedelta
) -> Stored:
    """Validate against the exact version, store, announce. Idempotent on response_id."""
    now = datetime.now(UTC)
    check_time(s.authored_at, now, max_skew)
    if catalog.get(s.questionnaire_id, s.questionnaire_version) is None:
        await refresh(pool, catalog)  # published through another replica since start-up
    checked = check(catalog, s.questionnaire_id, s.questionnaire_version, s.language, s.answers)
    request_digest = digest(s.model_dump(mode="json"))
    try:
        return await _submit_new(pool, checked, participant_id, s, request_digest, now)
    except _Raced:
        existing = await repository.versions(pool, s.response_id)
        return _retry_of(existing, participant_id, request_digest)


async def _submit_new(
    pool: asyncpg.Pool,
    checked: Checked,
    participant_id: str,
    s: Submission,
    request_digest: str,
    now: datetime,
) -> Stored:
    async with pool.acquire() as conn, conn.transaction():
        existing = await repository.versions(conn, s.response_id)
        if existing:
            return _retry_of(existing, participant_id, request_digest)
        await _refuse_if_withdrawn(conn, participant_id, s.authored_at, "authored_at")
        on_time, flags = await _timing(conn, participant_id, s)
        row = ResponseVersion(
            response_id=s.response_id,
            version=1,
            participant_id=participant_id,
            questionnaire_id=s.questionnaire_id,
            questionnaire_version=s.questionnaire_version,
            occurrence_id=s.occurrence_id,
            language=s.language,
            authored_at=s.authored_at,
            received_at=now,
            answers=s.answers,
            scores=_scores(checked),
            on_time=on_time,
            flags=flags,
            request_digest=request_digest,
        )
        await _store(conn, row, checked, checked.signals)
        await _audit_version(
            conn, row, f"participant:{participant_id}", None, free_text=_texts(checked)
        )
    return Stored(True, row)


def _scores(checked: Checked) -> Scores:
    return {x.name: {"value": x.value, "band": x.band} for x in checked.scores}


async def _check_again(
    pool: asyncpg.Pool, catalog: Catalog, stored: ResponseVersion, answers: Answers
) -> Checked:
    """Check answers against the questionnaire version of a stored response."""
    key = (stored.questionnaire_id, stored.questionnaire_version)
    if catalog.get(*key) is None:
        await refresh(pool, catalog)
    return check(catalog, *key, stored.language, answers)


def _retry_of(existing: list[ResponseVersion], participant_id: str, request_digest: str) -> Stored:
    first = existing[0]
    if first.participant_id != participant_id or first.request_digest != request_digest:
        raise conflict("response_id_reused", "this response_id was used for a different response")
    return Stored(False, existing[-1])


async def correct(
    pool: asyncpg.Pool,
    catalog: Catalog,
    participant_id: str,
    response_id: UUID,
    c: Correction,
    *,
    author: str = "participant",
    author_detail: Mapping[str, str] | None = None,
) -> Stored:
    """A new version with a reason and its author (the participant, or a staff actor
    `staff:<subject>` with their name and role in `author_detail`); earlier versions stay
    as they were."""
    request_digest = digest({**c.model_dump(mode="json"), "author": author})
    try:
        return await _correct(
            pool, catalog, participant_id, response_id, c, request_digest, author, author_detail
        )
    except _Raced:
        raise conflict("stale_version", "another correction was stored at the same time") from None


async def _correct(
    pool: asyncpg.Pool,
    catalog: Catalog,
    participant_id: str,
    response_id: UUID,
    c: Correction,
    request_digest: str,
    author: str,
    author_detail: Mapping[str, str] | None,
) -> Stored:
    async with pool.acquire() as conn, conn.transaction():
        if await repository.lock_response(conn, response_id) != participant_id:
            raise Refused(Kind.NOT_FOUND, "unknown_response", f"no response {response_id} of yours")
        history = await repository.versions(conn, response_id)
        latest = history[-1]
        if c.based_on_version != latest.version:
            done = next((v for v in history if v.version == c.based_on_version + 1), None)
            if done is not None and done.request_digest == request_digest:
                return Stored(False, history[-1])  # a retry of a stored one, even if withdrawn
            raise conflict(
                "stale_version", f"version {latest.version} is current; correct that one"
            )
        if author == "participant":  # staff may still correct data-entry errors after it
            await _refuse_if_withdrawn(conn, participant_id, datetime.now(UTC))
        checked = await _check_again(pool, catalog, latest, c.answers)
        before = {
            x.rule.rule for x in (await _check_again(pool, catalog, latest, latest.answers)).signals
        }
        row = replace(
            latest,
            version=latest.version + 1,
            answers=c.answers,
            received_at=datetime.now(UTC),
            scores=_scores(checked),
            flags=sorted({*latest.flags, "corrected"}),
            author=author,
            reason=c.reason,
            request_digest=request_digest,
        )
        await _store(conn, row, checked, [s for s in checked.signals if s.rule.rule not in before])
        actor = f"participant:{participant_id}" if author == "participant" else author
        await _audit_version(conn, row, actor, latest, author_detail, _texts(checked))
    return Stored(True, row)


def _texts(checked: Checked) -> frozenset[str]:
    """The questionnaire's free-text items (what a participant may write anything into)."""
    return frozenset(i.link_id for i in checked.questionnaire.items if i.type == ItemType.TEXT)


def _version(row: ResponseVersion, free_text: frozenset[str]) -> dict[str, Any]:
    """A version as the chain holds it: free-text answers only as `[free text]`."""
    return {
        "version": row.version,
        "questionnaire": row.questionnaire,
        "answers": {k: "[free text]" if k in free_text else v for k, v in row.answers.items()},
        "on_time": row.on_time,
        "flags": row.flags,
    }


async def _audit_version(
    conn: DbConnection,
    row: ResponseVersion,
    actor: str,
    before: ResponseVersion | None,
    actor_detail: Mapping[str, str] | None = None,
    free_text: frozenset[str] = frozenset(),
) -> None:
    """A response version in the audit trail: the answers before and after, and why. What
    the participant or staff wrote (free-text answers, the correction's reason) is kept
    off the chain, erasable, the chain holding a salted digest of it (decision 0087)."""
    written = {k: v for k, v in row.answers.items() if k in free_text}
    typed = None
    if written or row.reason is not None:
        typed = json.dumps({"reason": row.reason, "free_text": written}, sort_keys=True)
    await audit.record(
        conn,
        actor=actor,
        actor_detail=actor_detail,
        action="response.submitted" if before is None else "response.corrected",
        entity="response",
        entity_id=str(row.response_id),
        old=None if before is None else _version(before, free_text),
        new=_version(row, free_text),
        erasable_reason=typed,
        subject=row.participant_id if typed is not None else None,
    )

"""Ingest use cases, with their dependencies passed in explicitly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from trialstream import audit
from trialstream.auth import hash_token, new_token
from trialstream.db import DbConnection
from trialstream.errors import Kind, Refused
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.identity import Principal
from trialstream.outbox import enqueue
from trialstream.producer import KeyedRecord
from trialstream.reading_summaries import summarise
from trialstream.staff import audited_as
from trialstream.validation import ReadingUpload, received_json

from ingest import repository
from ingest.domain import (
    EVENT_ID_CONFLICT,
    CheckedBatch,
    RecordResult,
    Status,
    Uploader,
    check_batch,
    days_to_prepare,
    detach_cutoff,
    measured_days,
    refuse_days,
)
from ingest.tiering import could_be_tiered
from ingest.tiering_repository import tiered_days

log = structlog.get_logger(__name__)

# Publishes an upload's records (readings keyed by participant, and their summaries) in
# one send, returning once the broker acknowledged every one.
PublishReadings = Callable[[list[KeyedRecord]], Awaitable[None]]
_READINGS, _SUMMARIES = str(Topic.READINGS), str(Topic.READING_SUMMARIES)


@dataclass
class UploadResult:
    results: list[RecordResult]

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.count(Status.ACCEPTED),
            "duplicates": self.count(Status.DUPLICATE),
            "rejected": self.count(Status.REJECTED),
            "results": [r.as_dict() for r in self.results],
        }


async def upload_readings(
    pool: asyncpg.Pool,
    publish: PublishReadings,
    uploader: Uploader,
    records: Sequence[ReadingUpload | Any],
    *,
    max_clock_skew: timedelta,
    archive_days: repository.ArchiveDays,
) -> UploadResult:
    """Check each record, then archive and publish the ones never accepted before.

    The archive is the dedupe ledger (decision 0062): the archive rows and the publish
    share one transaction, and the rows commit only after the broker acknowledged every
    record (acks=all). If publishing fails the transaction rolls back, the device gets an
    error and its retry publishes again; if the commit fails after the acks, the retry
    re-publishes and consumers dedupe on event_id. The partitions of the readings' days
    are created first if missing (decision 0074): a missing day never fails an upload.
    """
    received_at = datetime.now(UTC)
    checked: CheckedBatch = check_batch(
        records, uploader, received_at=received_at, max_clock_skew=max_clock_skew
    )
    await _refuse_tiered_days(pool, checked, received_at)
    if checked.valid:
        days = measured_days(reading for _, reading in checked.valid)
        await archive_days.ensure(pool, days)
        try:
            await _archive_and_publish(pool, publish, checked, uploader.study_id, received_at)
        except asyncpg.CheckViolationError:
            # A day this process had seen was detached since (decision 0074), or tiered
            # (0077): nothing was written or published; create it again and retry once.
            archive_days.forget()
            await _refuse_tiered_days(pool, checked, received_at)
            await archive_days.ensure(pool, measured_days(r for _, r in checked.valid))
            await _archive_and_publish(pool, publish, checked, uploader.study_id, received_at)
    return UploadResult(checked.results)


async def _refuse_tiered_days(pool: asyncpg.Pool, checked: CheckedBatch, now: datetime) -> None:
    """Readings of days moved to the Parquet tier are refused (decision 0077). Asked only
    for days old enough to have been tiered: live uploads never pay for it."""
    old = {d for d in measured_days(r for _, r in checked.valid) if could_be_tiered(d, now)}
    if old:
        refuse_days(checked, await tiered_days(pool, sorted(old)))


async def _archive_and_publish(
    pool: asyncpg.Pool,
    publish: PublishReadings,
    checked: CheckedBatch,
    study_id: str,
    received_at: datetime,
) -> None:
    if not checked.valid:
        return
    events = received_json([reading for _, reading in checked.valid], received_at, study_id)
    async with pool.acquire() as conn, conn.transaction():
        archived_before = await repository.archive_new(conn, events)
        to_publish, new = [], []
        for (index, reading), event in zip(checked.valid, events, strict=True):
            same = archived_before.get(reading.event_id)
            if same is True:
                checked.results[index].status = Status.DUPLICATE
            elif same is False:
                checked.results[index].status = Status.REJECTED
                checked.results[index].errors = [EVENT_ID_CONFLICT]
            else:
                to_publish.append(KeyedRecord(_READINGS, reading.participant_id, event))
                new.append(reading)
        # the summaries go in the same send: acknowledged with the readings or not at all
        to_publish += [
            KeyedRecord(_SUMMARIES, s.participant_id, s.model_dump_json().encode())
            for s in summarise(new, study_id, received_at)
        ]
        await publish(to_publish)


async def maintain_archive(
    pool: asyncpg.Pool,
    archive_days: repository.ArchiveDays,
    *,
    days_ahead: int,
    detach_after_days: int | None,
) -> list[str]:
    """One pass of the archive's maintenance (decision 0074): the partitions of yesterday,
    today and the next `days_ahead` days exist; with `detach_after_days`, the partitions
    of days before that many days ago are detached (returned by name, for tiering)."""
    now = datetime.now(UTC)
    archive_days.forget()  # ask PostgreSQL: another replica may have detached some
    await archive_days.ensure(pool, days_to_prepare(now, days_ahead))
    if detach_after_days is None:
        return []
    detached = await repository.detach_readings_before(pool, detach_cutoff(now, detach_after_days))
    if detached:
        archive_days.forget()
        log.info("archive partitions detached", tables=detached)
    return detached


async def enroll_participant(
    pool: asyncpg.Pool, by: Principal, participant: repository.Participant
) -> None:
    """Register a participant with its site; announce it (outbox) so other services can
    scope data per site. Re-enrolling with the same site is a no-op; another site conflicts."""
    async with pool.acquire() as conn, conn.transaction():
        if await repository.insert_participant(conn, participant):
            event = ParticipantState(
                participant_id=participant.participant_id,
                study_id=participant.study_id,
                site_id=participant.site_id,
                timezone=participant.timezone,
            )
            await enqueue(conn, Topic.PARTICIPANTS, [(participant.participant_id, event)])
            await audit.record(
                conn,
                **audited_as(by, participant.study_id),
                action="participant.enrolled",
                entity="participant",
                entity_id=participant.participant_id,
                new={
                    "study_id": participant.study_id,
                    "site_id": participant.site_id,
                    "timezone": participant.timezone,
                },
            )
            return
        existing = await repository.get_participant(conn, participant.participant_id)
        if existing is not None and existing.site_id != participant.site_id:
            raise Refused(
                Kind.CONFLICT,
                "conflict",
                f"participant '{participant.participant_id}' is enrolled at site '{existing.site_id}'",
            )
        if existing is not None and existing.study_id != participant.study_id:
            raise Refused(
                Kind.CONFLICT,
                "conflict",
                f"participant '{participant.participant_id}' is enrolled in study '{existing.study_id}'",
            )


async def announce_withdrawal(conn: DbConnection, done: repository.Participant) -> None:
    """The participant's new state, withdrawn, on the participants topic (outbox): what
    every service acts on, whoever withdrew them (staff here, or the consent service)."""
    event = ParticipantState(
        participant_id=done.participant_id,
        study_id=done.study_id,
        site_id=done.site_id,
        timezone=done.timezone,
        status="withdrawn",
        withdrawn_at=done.withdrawn_at,
    )
    await enqueue(conn, Topic.PARTICIPANTS, [(done.participant_id, event)])


async def withdraw_participant(
    pool: asyncpg.Pool,
    by: Principal,
    participant_id: str,
    reason: str,
    withdrawn_at: datetime | None = None,
) -> repository.Participant:
    """enrolled -> withdrawn, announced on the participants topic (outbox) as the
    participant's new state. Withdrawing again returns the first withdrawal unchanged."""
    async with pool.acquire() as conn, conn.transaction():
        done = await repository.withdraw(
            conn, participant_id, withdrawn_at or datetime.now(UTC), reason
        )
        if done is None:
            existing = await repository.get_participant(conn, participant_id)
            if existing is None:
                raise Refused(
                    Kind.NOT_FOUND,
                    "unknown_participant",
                    f"participant '{participant_id}' is not enrolled",
                )
            return existing
        await announce_withdrawal(conn, done)
        await audit.record(  # the reason stays here, off the chain: it is never published
            conn,
            **audited_as(by, done.study_id),
            action="participant.withdrawn",
            entity="participant",
            entity_id=done.participant_id,
            old={"status": "enrolled"},
            new={"status": "withdrawn", "withdrawn_at": str(done.withdrawn_at)},
            erasable_reason=reason,  # erased with the participant (decision 0087)
            subject=done.participant_id,
        )
        return done


async def enroll_device(
    pool: asyncpg.Pool, by: Principal, device_id: str, participant_id: str
) -> str:
    """Create a device credential; the token is returned once and stored only as a hash."""
    token = new_token("dev")
    async with pool.acquire() as conn, conn.transaction():
        participant = await repository.get_participant(conn, participant_id)
        if participant is None:
            raise Refused(
                Kind.NOT_FOUND,
                "unknown_participant",
                f"participant '{participant_id}' is not enrolled",
            )
        if not await repository.insert_device(conn, device_id, participant_id, hash_token(token)):
            raise Refused(Kind.CONFLICT, "conflict", f"device '{device_id}' is already enrolled")
        await audit.record(
            conn,
            **audited_as(by, participant.study_id),
            action="device.registered",
            entity="device",
            entity_id=device_id,
            new={"participant_id": participant_id, "status": "active"},
        )
    return token


async def revoke_device(pool: asyncpg.Pool, by: Principal, device_id: str, study_id: str) -> bool:
    """Revoke an active device credential; False if there is none."""
    async with pool.acquire() as conn, conn.transaction():
        participant_id = await repository.revoke_device(conn, device_id)
        if participant_id is None:
            return False
        await audit.record(
            conn,
            **audited_as(by, study_id),
            action="device.revoked",
            entity="device",
            entity_id=device_id,
            old={"participant_id": participant_id, "status": "active"},
            new={"participant_id": participant_id, "status": "revoked"},
        )
    return True

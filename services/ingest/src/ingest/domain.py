"""Pure upload logic: which records of a batch are accepted, and why the others are not."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from trialstream.errors import Kind, Refused, about_field
from trialstream.events.base import DEFAULT_STUDY
from trialstream.studies import Module, StudyRegistry
from trialstream.validation import ReadingUpload, RecordRejected, check, parse_upload


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Uploader:
    """The device behind the credential, and the participant it is enrolled to."""

    device_id: str
    participant_id: str
    withdrawn_at: datetime | None = None  # readings measured after it are refused
    study_id: str = DEFAULT_STUDY  # stamped on every reading it uploads
    # Studies with the consent module (decision 0080): the participant's wearable consent;
    # readings measured before it, or after it was withdrawn, are refused.
    consented_from: datetime | None = None
    consent_until: datetime | None = None
    # A study that pauses after a missed re-consent deadline (decision 0088): readings
    # measured from this instant on are refused until the participant signs.
    paused_from: datetime | None = None


@dataclass
class RecordResult:
    index: int
    status: Status
    event_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "status": str(self.status),
            "event_id": self.event_id,
        }
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class CheckedBatch:
    results: list[RecordResult]
    # Valid readings (temperatures in Celsius) with the position of their result, ready
    # for dedupe and publish.
    valid: list[tuple[int, ReadingUpload]]


def _event_id_of(raw: Any) -> str | None:
    if isinstance(raw, ReadingUpload):
        return str(raw.event_id)
    value = raw.get("event_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


# The same event id with other content: never a duplicate (that would lose a reading).
EVENT_ID_CONFLICT = {
    "field": "event_id",
    "code": "event_id_conflict",
    "message": "this event_id was already used for a different reading; give each reading its own",
}


# A reading of a day already moved to the Parquet tier (decision 0077): not archived, not
# published. If it was uploaded before, it is in the tier; a new one comes too late.
DAY_ARCHIVED = {
    "field": "measured_at",
    "code": "day_archived",
    "message": "readings of this UTC day were moved to the archive's long-term tier; "
    "the day takes no new readings (one uploaded before is kept there)",
}


def refuse_days(checked: CheckedBatch, days: set[date]) -> None:
    """Refuse the valid readings measured on `days` (tiered days) with `day_archived`."""
    if not days:
        return
    keep = []
    for index, reading in checked.valid:
        if reading.measured_at.astimezone(UTC).date() in days:
            checked.results[index].status = Status.REJECTED
            checked.results[index].errors = [DAY_ARCHIVED]
        else:
            keep.append((index, reading))
    checked.valid = keep


def check_batch(
    raw_records: Sequence[ReadingUpload | Any],
    uploader: Uploader,
    *,
    received_at: datetime,
    max_clock_skew: timedelta,
) -> CheckedBatch:
    """Each record's verdict. A record may come already shape-checked (a ReadingUpload
    from the whole-body fast path); the rules after the shape check apply to all."""
    results: list[RecordResult] = []
    valid: list[tuple[int, ReadingUpload]] = []
    seen: dict[str, object] = {}
    for index, raw in enumerate(raw_records):
        try:
            upload = raw if isinstance(raw, ReadingUpload) else parse_upload(raw)
            if upload.participant_id != uploader.participant_id:
                raise RecordRejected.one(
                    "participant_id",
                    "participant_not_enrolled_to_device",
                    f"this device is enrolled to another participant, not '{upload.participant_id}'",
                )
            if upload.device_id != uploader.device_id:
                raise RecordRejected.one(
                    "device_id",
                    "device_mismatch",
                    f"the credential belongs to device '{uploader.device_id}', "
                    f"not '{upload.device_id}'",
                )
            reading = check(upload, received_at=received_at, max_clock_skew=max_clock_skew)
            if uploader.withdrawn_at is not None and reading.measured_at > uploader.withdrawn_at:
                raise RecordRejected.one(
                    "measured_at",
                    "participant_withdrawn",
                    "the participant withdrew from the study before this reading was measured",
                )
            _check_consent(uploader, reading.measured_at)
        except RecordRejected as rejected:
            results.append(
                RecordResult(index, Status.REJECTED, _event_id_of(raw), rejected.as_dicts())
            )
            continue
        event_id = str(reading.event_id)
        if event_id in seen:
            if seen[event_id] == reading:
                results.append(RecordResult(index, Status.DUPLICATE, event_id))
            else:
                results.append(RecordResult(index, Status.REJECTED, event_id, [EVENT_ID_CONFLICT]))
            continue
        seen[event_id] = reading
        results.append(RecordResult(index, Status.ACCEPTED, event_id))
        valid.append((index, reading))
    return CheckedBatch(results, valid)


def _check_consent(uploader: Uploader, measured_at: datetime) -> None:
    if uploader.consented_from is not None and measured_at < uploader.consented_from:
        raise RecordRejected.one(
            "measured_at",
            "before_consent",
            "measured before the participant consented to wearable data",
        )
    if uploader.consent_until is not None and measured_at > uploader.consent_until:
        raise RecordRejected.one(
            "measured_at",
            "consent_withdrawn",
            "measured after the participant withdrew consent to wearable data",
        )
    if uploader.paused_from is not None and measured_at >= uploader.paused_from:
        raise RecordRejected.one(
            "measured_at",
            "reconsent_overdue",
            "measured after the re-consent deadline; the study pauses wearable data until "
            "the participant signs the amended consent",
        )


def check_study(studies: StudyRegistry, study_id: str) -> None:
    """The study is known here and uses ingest: 503 `studies_loading` while this process
    has not read the studies topic, else 422 `unknown_study` or 409 `module_not_enabled`."""
    if not studies.known(study_id) and not studies.caught_up:
        raise Refused(
            Kind.UNAVAILABLE,
            "studies_loading",
            "This service is still reading the studies; retry in a few seconds.",
        )
    if not studies.known(study_id):
        raise about_field(
            Kind.INVALID,
            "unknown_study",
            f"No study '{study_id}' is known (yet).",
            "study_id",
            "declare it with `trialstream study apply` first",
        )
    if not studies.enables(study_id, Module.INGEST):
        raise Refused(
            Kind.CONFLICT,
            "module_not_enabled",
            f"Study '{study_id}' does not use wearable ingest.",
        )


def enrolment_timezone(
    studies: StudyRegistry, study_id: str, site_id: str, timezone: str | None
) -> str:
    """The study exists here, uses ingest, and declares the site; the participant's
    timezone (given, else the site's, else UTC)."""
    check_study(studies, study_id)
    study = studies.get(study_id)
    if study is None:  # the implicit default study: any site
        return timezone or "UTC"
    site = study.site(site_id)
    if site is None:
        raise about_field(
            Kind.INVALID,
            "unknown_site",
            f"Study '{study_id}' has no site '{site_id}'.",
            "site_id",
            f"one of {sorted(s.id for s in study.sites)}",
        )
    return timezone or site.timezone


def measured_days(readings: Iterable[ReadingUpload]) -> set[date]:
    """The archive partitions (UTC days of measured_at, decision 0074) a batch writes to."""
    return {reading.measured_at.astimezone(UTC).date() for reading in readings}


def days_to_prepare(now: datetime, ahead: int) -> list[date]:
    """Yesterday (readings arrive late), today and `ahead` days after it: the partitions
    the maintenance loop keeps ready, so that uploads seldom have to create one."""
    today = now.astimezone(UTC).date()
    return [today + timedelta(days=n) for n in range(-1, ahead + 1)]


def detach_cutoff(now: datetime, after_days: int) -> date:
    """Partitions of days before this are detached: the day `after_days` ago is kept."""
    return now.astimezone(UTC).date() - timedelta(days=after_days)

"""Export jobs, the pure part (issue 17, decision 0076): formats, how a job is cut into
parts, the files' names, and how a job is shown. No I/O here.

A job exports the readings of a study (or of one participant) received before it was
requested. It is cut into parts, one UTC day of measured_at each (a participant's job:
one part of all its days); each part writes one file and is committed done with its row count and checksum, so a job taken over by
another replica redoes at most the parts that were being written (a part's file is
replaced, never appended to) and never writes a row twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

# The columns of every format, in this order; ids are pseudonymous (no name, email or
# phone is ever in the archive).
COLUMNS = (
    "event_id",
    "participant_id",
    "device_id",
    "metric",
    "value",
    "unit",
    "measured_at",
    "received_at",
)


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    FHIR_NDJSON = "fhir-ndjson"

    @property
    def suffix(self) -> str:
        return {"csv": "csv", "parquet": "parquet", "fhir-ndjson": "ndjson"}[self.value]

    @property
    def media_type(self) -> str:
        return {
            "csv": "text/csv; charset=utf-8",
            "parquet": "application/vnd.apache.parquet",
            "fhir-ndjson": "application/fhir+ndjson",
        }[self.value]


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def plan_days(first: datetime | None, last: datetime | None) -> list[date]:
    """The parts of a job: every UTC day from the first reading's to the last's (none when
    there is no reading). A day is the unit because the archive is written, and kept, in
    time order: one day's readings are near each other on disk (and in one partition of a
    time-partitioned archive), so the parts together read the archive once."""
    if first is None or last is None:
        return []
    day, end = first.astimezone(UTC).date(), last.astimezone(UTC).date()
    days = []
    while day <= end:
        days.append(day)
        day += timedelta(days=1)
    return days


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def file_name(day: date, fmt: ExportFormat, last_day: date | None = None) -> str:
    """`Observation-2026-11-04.ndjson` for FHIR (Bulk Data names files by resource type),
    `readings-2026-11-04.csv` otherwise; `readings-2026-11-01--2026-11-30.csv` for a
    part of several days."""
    stem = "Observation" if fmt is ExportFormat.FHIR_NDJSON else "readings"
    span = day.isoformat() if last_day in (None, day) else f"{day}--{last_day}"
    return f"{stem}-{span}.{fmt.suffix}"


@dataclass(frozen=True)
class PlannedPart:
    day: date
    last_day: date | None  # None: `day` alone
    file_name: str


def plan_parts(days: Sequence[date], fmt: ExportFormat, *, one_file: bool) -> list[PlannedPart]:
    """A study's export: a part, and a file, per day (a day is about a 30th of a study's
    readings, written side by side with others). One participant's: one part for all the
    days, so its receiver gets one file (a participant's month is a few hundred thousand
    readings at most: redone whole if the job is taken over, in a second or two)."""
    if not days:
        return []
    if one_file:
        first, last = days[0], days[-1]
        return [PlannedPart(first, last, file_name(first, fmt, last))]
    return [PlannedPart(d, None, file_name(d, fmt)) for d in days]


def part_days(day: date, last_day: date | None) -> list[date]:
    """The days a part holds, in order."""
    return plan_days(day_bounds(day)[0], day_bounds(last_day or day)[0])


@dataclass(frozen=True)
class PartView:
    part: int
    day: date
    file_name: str
    rows_written: int | None
    bytes: int | None
    sha256: str | None
    last_day: date | None = None


@dataclass(frozen=True)
class ExportJob:
    export_id: UUID
    study_id: str
    participant_id: str | None
    format: ExportFormat
    status: ExportStatus
    requested_by: str
    requested_at: datetime
    as_of: datetime
    site_ids: tuple[str, ...] | None
    started_at: datetime | None
    finished_at: datetime | None
    parts_total: int | None
    error: str | None
    attempts: int = 0
    expired_at: datetime | None = None  # its files were deleted (INGEST_EXPORT_KEEP_DAYS)
    expired_reason: str | None = None  # set when an erasure withdrew it (decision 0086)


def present(job: ExportJob, parts: Sequence[PartView]) -> dict[str, Any]:
    """The job as `GET /v1/exports/{id}` shows it: status, progress, and a download link
    per finished file."""
    base_url = f"/v1/exports/{job.export_id}"
    done = [p for p in parts if p.rows_written is not None]
    return {
        "export_id": str(job.export_id),
        "study_id": job.study_id,
        "participant_id": job.participant_id,
        "format": str(job.format),
        "status": str(job.status),
        "requested_by": job.requested_by,
        "requested_at": job.requested_at.isoformat(),
        "as_of": job.as_of.isoformat(),
        "site_ids": list(job.site_ids) if job.site_ids is not None else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "error": job.error,
        "expired_at": job.expired_at.isoformat() if job.expired_at else None,
        "progress": {
            "rows_written": sum(p.rows_written or 0 for p in done),
            "parts_done": len(done),
            "parts_total": job.parts_total,
        },
        "files": [
            {
                "name": p.file_name,
                "day": p.day.isoformat(),
                "last_day": (p.last_day or p.day).isoformat(),
                "url": f"{base_url}/files/{p.file_name}",
                "rows": p.rows_written,
                "bytes": p.bytes,
                "sha256": p.sha256,
            }
            for p in done
            if job.expired_at is None  # the files are gone
        ],
    }


def within_scope(scope: Sequence[str] | None, job_sites: Sequence[str] | None) -> bool:
    """May someone who exports the sites `scope` (None: every site) see a job of
    `job_sites` (None: every site)? Only when it holds no participant outside theirs."""
    if scope is None:
        return True
    return job_sites is not None and set(job_sites) <= set(scope)

"""Reads that span both tiers (decision 0077): a participant's readings for the staff
route, and one day of a study for an export.

A day is in exactly one place at a time: an attached partition, the detached table(s) of
a day being tiered, or the files of a tiered day. A read looks up the days' tier states,
reads each day where that says, then looks the states up again: if a day moved meanwhile
(tiering claimed or finished it), the read is done again, so a reading is never missed
and never returned twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.compute as pc  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pyarrow ships no type hints
from trialstream.db import DbConnection
from trialstream.transient import TransientConflict

from ingest import repository
from ingest import tiering_repository as tier_repo
from ingest.tiering import day_span, pg_csv
from ingest.tiering_store import TierStore

ATTEMPTS = 3
EXPORT_BATCH_ROWS = 128 * 1024

_DETACHED_READINGS = """
SELECT event_id, participant_id, device_id, metric, value, unit, measured_at, received_at
FROM "{table}"
WHERE participant_id = $1 AND measured_at >= $2 AND measured_at < $3
  AND ($4::text IS NULL OR metric = $4)
ORDER BY measured_at, event_id
LIMIT $5
"""


class DayMoved(TransientConflict):
    """A day was being tiered, or moved tier, while it was read: read it again."""


def _as_dict(record: asyncpg.Record) -> dict[str, Any]:
    out = dict(record)
    out["event_id"] = str(out["event_id"])
    return out


def _key(row: dict[str, Any]) -> tuple[datetime, UUID]:
    return row["measured_at"], UUID(row["event_id"])


def tier_rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


async def participant_readings(
    pool: asyncpg.Pool,
    store: TierStore,
    participant_id: str,
    study_id: str,
    start: datetime,
    end: datetime,
    metric: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The first `limit` readings of the participant in [start, end), ordered by
    measured_at then event_id, from PostgreSQL and the tier alike (as the route has always
    answered from PostgreSQL alone)."""
    if end <= start:
        return []
    days = day_span(start, end)
    for _ in range(ATTEMPTS):
        try:
            return await _read_once(
                pool, store, participant_id, study_id, start, end, metric, limit, days
            )
        except (DayMoved, asyncpg.UndefinedTableError):
            continue  # a day moved tier under the read: read again from the new state
    raise DayMoved(f"the archive's days {days[0]}..{days[-1]} kept moving tier")


async def _read_once(
    pool: asyncpg.Pool,
    store: TierStore,
    participant_id: str,
    study_id: str,
    start: datetime,
    end: datetime,
    metric: str | None,
    limit: int,
    days: tuple[date, date],
) -> list[dict[str, Any]]:
    before = await tier_repo.states(pool, days[0], days[-1])
    rows = [
        _as_dict(r)
        for r in await repository.readings_for(pool, participant_id, start, end, metric, limit)
    ]
    tiered = []
    for state in before:
        if state.status == "tiered":
            tiered.append(state.day)
            continue
        for table in state.source_tables:
            sql = _DETACHED_READINGS.format(table=table)
            found = await pool.fetch(sql, participant_id, start, end, metric, limit)
            rows += [_as_dict(r) for r in found]
    if tiered:
        files = await tier_repo.tier_files(pool, tiered, study_id, participant_id)
        rows += await asyncio.to_thread(
            _read_days,
            store,
            [(f["day"], f["path"]) for f in files],
            participant_id,
            start,
            end,
            metric,
            limit,
        )
    if await tier_repo.states(pool, days[0], days[-1]) != before:
        raise DayMoved("a day moved tier during the read")
    rows.sort(key=_key)
    return rows[:limit]


def _read_days(
    store: TierStore,
    files: Sequence[tuple[date, str]],
    participant_id: str,
    start: datetime,
    end: datetime,
    metric: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Tiered days in order, until `limit` rows are found (later days cannot come before
    them): the participant's file of each day, its row groups pruned by statistics."""
    rows: list[dict[str, Any]] = []
    for day in sorted({d for d, _ in files}):
        paths = [p for d, p in files if d == day]
        table = store.read(paths, participant_id, start, end, metric)
        found = tier_rows(table)
        for row in found:
            row["event_id"] = str(row["event_id"])
        rows += sorted(found, key=_key)
        if len(rows) >= limit:
            break
    return rows


async def tiered_day_files(
    conn: DbConnection | asyncpg.Pool, study_id: str, day: date, participant_id: str | None
) -> list[str] | None:
    """The files of a study's day (of one participant's bucket when one is named) if the
    day is tiered; None when it is not (its rows are in PostgreSQL). A day being tiered
    raises DayMoved: an export part then waits for the next pass."""
    states = await tier_repo.states(conn, day, day)
    if not states:
        return None
    if states[0].status != "tiered":
        raise DayMoved(f"day {day} is being tiered; the export part is done again later")
    return [f["path"] for f in await tier_repo.tier_files(conn, [day], study_id, participant_id)]


def export_batches(
    store: TierStore,
    path: str,
    participant_ids: Sequence[str] | None,
    received_before: datetime,
    *,
    with_received_at: bool,
) -> Iterator[bytes]:
    """One tier file's rows for an export, a batch at a time as PostgreSQL's CSV lines: of
    these participants (None: every one in the file, all of the study's) received before
    the export was requested. Memory stays one batch, whatever the file's size."""
    wanted = pa.array(list(participant_ids), pa.string()) if participant_ids is not None else None
    with store.fs.open(store.full(path), "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=EXPORT_BATCH_ROWS):
            table = pa.Table.from_batches([batch])
            if wanted is not None:
                ids = table["participant_id"].cast(pa.string())
                table = table.filter(pc.is_in(ids, value_set=wanted))
            when = pa.scalar(received_before, type=table.schema.field("received_at").type)
            table = table.filter(pc.less(table["received_at"], when))
            if table.num_rows:
                yield pg_csv(table, with_received_at=with_received_at)

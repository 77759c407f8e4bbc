"""Tiering of old archive days to Parquet (issue 17, decision 0077), the pure part: where a
day's files go, which bucket a participant is in, how rows are checksummed the same way
here as in PostgreSQL, and how tier rows become PostgreSQL's CSV for exports. No I/O.

Layout (hive style, so DuckDB, Spark or pyarrow.dataset read the tree as it is):
`<root>/study_id=<study>/bucket=<bb>/day=<YYYY-MM-DD>/readings.parquet`, one file per
study, participant-hash bucket and day, rows sorted by participant and time (so a
participant's rows are a few row groups, found by their statistics).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.compute as pc  # type: ignore[import-untyped]  # pyarrow ships no type hints

from ingest.exports import COLUMNS

FILE_NAME = "readings.parquet"
NO_STUDY = "_none"  # a reading of a participant unknown to ingest (never, through uploads)
_MASK = (1 << 64) - 1


def bucket_of(participant_id: str, buckets: int) -> int:
    """The participant-hash bucket: the first 32 bits of the MD5 of the id, mod `buckets`
    (PostgreSQL computes the same in the tiering query)."""
    return int(hashlib.md5(participant_id.encode()).hexdigest()[:8], 16) % buckets  # noqa: S324 - a spread, not a secret


def file_path(study_id: str, bucket: int, day: date) -> str:
    """The file of one study, bucket and day, relative to the tier's root."""
    return (
        f"study_id={quote(study_id, safe='')}/bucket={bucket:02d}/day={day.isoformat()}/{FILE_NAME}"
    )


def tier_cutoff(now: datetime, after_days: int) -> date:
    """Days before this are tiered: the day `after_days` ago stays in PostgreSQL."""
    return now.astimezone(UTC).date() - timedelta(days=after_days)


def could_be_tiered(day: date, now: datetime) -> bool:
    """Whether a day may have been tiered at all: the setting is at least 2 days, so
    today's and the last two days' readings (nearly every upload) never need the look-up."""
    return day < now.astimezone(UTC).date() - timedelta(days=2)


def day_span(start: datetime, end: datetime) -> tuple[date, date]:
    """The first and last UTC day a half-open time range touches."""
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return start.astimezone(UTC).date(), last


def checksum_hex(total: int) -> str:
    return f"{total & _MASK:016x}"


def row_hashes(table: pa.Table) -> list[bytes]:
    """Each row's canonical text, as PostgreSQL's `ROW_TEXT` (tiering_repository) builds it:
    the ids and names as stored, the value as the 64 bits of its IEEE double (exact, no
    decimal formatting to agree on) and both times as microseconds since 1970."""
    value_bits = np.ascontiguousarray(table["value"].to_numpy()).view(np.int64)
    parts = [
        table["event_id"].cast(pa.string()),
        table["participant_id"].cast(pa.string()),
        table["device_id"].cast(pa.string()),
        table["metric"].cast(pa.string()),
        pa.array(value_bits).cast(pa.string()),
        table["unit"].cast(pa.string()),
        table["measured_at"].cast(pa.int64()).cast(pa.string()),
        table["received_at"].cast(pa.int64()).cast(pa.string()),
    ]
    joined = pc.binary_join_element_wise(*parts, "|")
    texts: list[bytes] = joined.cast(pa.binary()).to_pylist()
    return texts


def checksum(tables: Iterable[pa.Table]) -> tuple[int, int]:
    """(rows, checksum) of tier rows: the sum mod 2^64 of the first 8 bytes (big-endian,
    signed) of each row's MD5, so the order of the rows does not matter."""
    rows, total = 0, 0
    md5 = hashlib.md5
    for table in tables:
        rows += table.num_rows
        digests = b"".join([md5(text).digest()[:8] for text in row_hashes(table)])
        # int64 sums wrap around: exactly the sum mod 2^64, without a Python int per row
        total += int(np.frombuffer(digests, dtype=">i8").astype(np.int64).sum())
    return rows, total & _MASK


def _pg_time(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """PostgreSQL's ISO text of a UTC time: `2026-11-04 07:03:00.25+00`."""
    text = pc.strftime(column, format="%Y-%m-%d %H:%M:%S")  # with 6 fraction digits
    return pc.binary_join_element_wise(pc.replace_substring_regex(text, r"\.?0+$", ""), "+00", "")


def pg_csv(table: pa.Table, *, with_received_at: bool = True) -> bytes:
    """Tier rows as the lines COPY ... CSV gives for the same rows, so that an export writes
    a tiered day through the same writers as a day in PostgreSQL. The ids need no quoting
    (validated at the door: letters, digits, `_.:-`); the metric names and units neither."""
    if table.num_rows == 0:
        return b""
    columns = [
        _pg_time(table[name]) if name in ("measured_at", "received_at") else table[name]
        for name in COLUMNS
    ]
    if not with_received_at:
        columns[-1] = pa.array([""] * table.num_rows, pa.string())
    text = [pc.cast(c, pa.string()) if c.type != pa.string() else c for c in columns]
    lines = pc.binary_join_element_wise(*text, ",")
    return ("\n".join(lines.to_pylist()) + "\n").encode()

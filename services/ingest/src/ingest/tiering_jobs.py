"""Tiering of old archive days to Parquet (decision 0077): what ingest's tiering loop does
each pass, and what the benchmark drives directly.

For each day older than the cutoff: claim it (its partition is detached and the day
recorded 'tiering' in one transaction; one replica at a time, under a lease), stream its
rows from PostgreSQL into one Parquet file per study and participant-hash bucket, read
every file back and compare its rows' count and checksum with the same figures computed
by PostgreSQL over the detached table, and only then, in one transaction, record the
files, mark the day 'tiered' and drop the table. A replica that stops half way leaves the
table and the 'tiering' row; when its lease runs out, the next pass writes the day again
from the start (the same rows to the same file names). A mismatch leaves everything in
PostgreSQL and is retried on the next pass.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import asyncpg
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.compute as pc  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.csv as pacsv  # type: ignore[import-untyped]  # pyarrow ships no type hints
import structlog
from prometheus_client import Counter, Histogram
from trialstream import audit

from ingest import tiering_repository as repo
from ingest.exports_jobs import Chunks
from ingest.tiering import checksum_hex, tier_cutoff
from ingest.tiering_store import TIER_SCHEMA, DayFileWriter, FileCheck, TierStore, WrittenFile

log = structlog.get_logger(__name__)

TIERED_DAYS = Counter("ingest_archive_tiered_days_total", "Archive days moved to Parquet")
TIERED_ROWS = Counter("ingest_archive_tiered_rows_total", "Readings moved to Parquet")
TIERED_BYTES = Counter("ingest_archive_tiered_bytes_total", "Bytes of Parquet written and kept")
MISMATCHES = Counter(
    "ingest_archive_tier_mismatches_total",
    "Days whose files did not match PostgreSQL (the partition was kept; retried next pass)",
)
SECONDS = Histogram(
    "ingest_archive_tier_seconds",
    "Seconds to tier one day (write, verify, commit)",
    buckets=(1, 5, 15, 60, 300, 900, 3600),
)

_ROW_SCHEMA = pa.schema([("study_id", pa.string()), ("bucket", pa.int32()), *TIER_SCHEMA])
AfterWrite = Callable[[TierStore, Sequence[WrittenFile]], Awaitable[None]]


class TierMismatchError(Exception):
    """The files read back do not hold what PostgreSQL holds: nothing was dropped."""


@dataclass(frozen=True)
class TierResult:
    day: date
    rows: int
    files: int
    bytes: int
    seconds: float


class _GroupedFiles:
    """COPY's CSV (sorted by study and bucket) written into one file per group."""

    def __init__(self, store: TierStore, day: date) -> None:
        self._store, self._day = store, day
        self._current: DayFileWriter | None = None
        self.written: list[WrittenFile] = []

    def write(self, chunk: bytes) -> int:
        table = pacsv.read_csv(
            io.BytesIO(chunk),
            read_options=pacsv.ReadOptions(column_names=_ROW_SCHEMA.names, block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types=_ROW_SCHEMA,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        keys = pc.binary_join_element_wise(
            table["study_id"], table["bucket"].cast(pa.string()), "\x00"
        )
        cuts = [0]
        if table.num_rows > 1:
            changed = pc.not_equal(keys.slice(1), keys.slice(0, table.num_rows - 1))
            cuts += [int(i) + 1 for i in pc.indices_nonzero(changed).to_pylist()]
        cuts.append(table.num_rows)
        rows = table.drop_columns(["study_id", "bucket"])
        for start, end in itertools.pairwise(cuts):
            if start == end:
                continue
            study, bucket = table["study_id"][start].as_py(), table["bucket"][start].as_py()
            current = self._current
            if current is None or (current.study_id, current.bucket) != (study, bucket):
                self._close_current()
                current = self._current = self._store.open_writer(study, bucket, self._day)
            current.write(rows.slice(start, end - start))
        return int(table.num_rows)

    def _close_current(self) -> None:
        if self._current is not None:
            self.written.append(self._current.close())
            self._current = None

    def close(self) -> None:
        self._close_current()

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()
            self._current = None


@dataclass
class Tierer:
    pool: asyncpg.Pool
    store: TierStore
    worker: str
    after_days: int
    buckets: int = 16
    lease_seconds: float = 600.0
    chunk_bytes: int = 16 << 20
    after_write: AfterWrite | None = None  # a seam for tests: between writing and verifying
    _stopping: bool = field(default=False, init=False)

    def stop(self) -> None:
        self._stopping = True

    async def run_all(self) -> list[TierResult]:
        """One pass: every day older than the cutoff, oldest first."""
        done = []
        cutoff = tier_cutoff(datetime.now(UTC), self.after_days)
        for day in await repo.days_to_tier(self.pool, cutoff):
            if self._stopping:
                break
            try:
                result = await self.tier_day(day)
            except TierMismatchError:
                continue  # logged and counted; the day stays in PostgreSQL for the next pass
            if result is not None:
                done.append(result)
        return done

    async def tier_day(self, day: date) -> TierResult | None:
        """Tier one day; None when another replica has it or nothing is left of it."""
        claim = await repo.claim(
            self.pool, day, self.worker, self.lease_seconds, self.buckets, self.store.url
        )
        if claim is None:
            return None
        started = time.monotonic()
        try:
            result = await self._tier(claim, started)
        except BaseException:
            await asyncio.shield(repo.release(self.pool, day, self.worker))
            raise
        SECONDS.observe(result.seconds)
        return result

    async def _tier(self, claim: repo.Claim, started: float) -> TierResult:
        # PostgreSQL's checksum and the files' writing read the same detached table: at once
        try:
            async with asyncio.TaskGroup() as group:
                checksummed = group.create_task(repo.checksums(self.pool, claim))
                written = group.create_task(self._write(claim))
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        expected, files = checksummed.result(), written.result()
        phases = {"checksum_and_write_s": time.monotonic() - started}
        if self.after_write is not None:
            await self.after_write(self.store, files)
        if not await repo.renew(self.pool, claim.day, self.worker, self.lease_seconds):
            raise TierMismatchError(f"day {claim.day}: the lease was lost to another replica")
        checks = await asyncio.to_thread(lambda: [self.store.check(f.path) for f in files])
        phases["verify_s"] = time.monotonic() - started - sum(phases.values())
        problems = compare(expected, files, checks)
        if problems:
            MISMATCHES.inc()
            log.error(
                "archive day kept: its files do not match", day=str(claim.day), problems=problems
            )
            raise TierMismatchError(f"day {claim.day}: " + "; ".join(problems))
        rows = sum(n for n, _ in expected.values())
        total = checksum_hex(sum(c for _, c in expected.values()))
        size = sum(f.bytes for f in files)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await repo.commit(conn, claim, self.worker, files, expected, rows, total):
                raise TierMismatchError(f"day {claim.day}: the lease was lost to another replica")
            await audit.record(
                conn,
                actor="system:ingest",
                action="archive.day_tiered",
                entity="archive_day",
                entity_id=claim.day.isoformat(),
                new={"rows": rows, "files": len(files), "bytes": size, "checksum": total},
            )
        seconds = time.monotonic() - started
        TIERED_DAYS.inc()
        TIERED_ROWS.inc(rows)
        TIERED_BYTES.inc(size)
        log.info(
            "archive day tiered",
            day=str(claim.day),
            rows=rows,
            files=len(files),
            bytes=size,
            checksum=total,
            seconds=round(seconds, 1),
            **{k: round(v, 1) for k, v in phases.items()},
        )
        return TierResult(claim.day, rows, len(files), size, seconds)

    async def _write(self, claim: repo.Claim) -> list[WrittenFile]:
        out = _GroupedFiles(self.store, claim.day)
        chunks = Chunks(out, self.chunk_bytes)
        renewed = time.monotonic()

        async def sink(data: bytes) -> None:
            nonlocal renewed
            await chunks(data)
            if time.monotonic() - renewed > self.lease_seconds / 3:  # a big day takes minutes
                renewed = time.monotonic()
                if not await repo.renew(self.pool, claim.day, self.worker, self.lease_seconds):
                    raise TierMismatchError(
                        f"day {claim.day}: the lease was lost to another replica"
                    )

        try:
            async with self.pool.acquire() as conn:
                await repo.copy_rows(conn, claim, sink)
            await chunks.flush(last=True)
            await asyncio.to_thread(out.close)
        except BaseException:
            out.abort()
            raise
        return out.written


def compare(
    expected: dict[tuple[str, int], tuple[int, int]],
    files: Sequence[WrittenFile],
    checks: Sequence[FileCheck],
) -> list[str]:
    """What differs between PostgreSQL's figures and the files read back (ids of studies
    and buckets only: nothing about a participant)."""
    problems = []
    seen = set()
    for written, check in zip(files, checks, strict=True):
        key = (written.study_id, written.bucket)
        seen.add(key)
        rows, total = expected.get(key, (0, 0))
        if check.sha256 != written.sha256:
            problems.append(f"{written.path}: sha256 differs from what was written")
        if check.rows != rows or written.rows != rows:
            problems.append(f"{written.path}: {check.rows} rows read back, {rows} in PostgreSQL")
        if check.checksum != total:
            problems.append(
                f"{written.path}: checksum {check.checksum:016x}, PostgreSQL {total:016x}"
            )
    for key in sorted(set(expected) - seen):
        problems.append(f"study {key[0]} bucket {key[1]}: no file written")
    return problems

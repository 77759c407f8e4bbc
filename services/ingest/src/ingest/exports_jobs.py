"""The export jobs' runner: what ingest's background loop does each pass (and what the
benchmark drives directly).

One pass claims one job (`FOR UPDATE SKIP LOCKED` under a lease: one replica runs it; if
that replica stops, its lease runs out and another takes the job over), plans it into
days, and writes the days not yet done, `concurrency` at a time. A day streams from
PostgreSQL with COPY in chunks of about `chunk_bytes`, each converted and written in a
worker thread (Arrow releases the GIL) while the event loop keeps serving; memory is a
few chunks whatever the study's size. A day's file is written under a temporary name,
renamed when complete, then recorded done with its row count and checksum.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from uuid import UUID

import asyncpg
import structlog
from trialstream.transient import is_transient

from ingest import exports_repository as repo
from ingest import tiering_repository as tier_repo
from ingest.exports import ExportFormat, ExportJob, day_bounds, part_days
from ingest.exports_formats import ChunkWriter, HashingFile, writer
from ingest.tiering_reads import DayMoved, export_batches, tiered_day_files
from ingest.tiering_store import TierStore

log = structlog.get_logger(__name__)


class _LeaseLost(Exception):
    """Another replica took the job over (this one was too slow to renew its lease)."""


class _Stopping(Exception):
    """The service is shutting down: the job goes back to the queue after this day."""


def job_dir(export_dir: Path, export_id: UUID) -> Path:
    return export_dir / str(export_id)


@dataclass
class PartResult:
    rows: int
    size: int
    sha256: str


class _Chunks:
    """COPY's output gathered into chunks of whole lines, each handed to a worker thread.
    (asyncpg hands over whole CopyData messages, a line each; a chunk is still cut after
    its last newline, so a writer never sees half a line whatever the client does.)"""

    def __init__(self, out: ChunkWriter, chunk_bytes: int) -> None:
        self._out = out
        self._chunk_bytes = chunk_bytes
        self._pending: list[bytes] = []
        self._size = 0
        self.rows = 0

    async def __call__(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self._chunk_bytes:
            await self.flush()

    async def flush(self, *, last: bool = False) -> None:
        data = b"".join(self._pending)
        cut = len(data) if last else data.rfind(b"\n") + 1
        rest = data[cut:]
        self._pending, self._size = ([rest], len(rest)) if rest else ([], 0)
        if cut:
            self.rows += await asyncio.to_thread(self._out.write, data[:cut])

    def close(self) -> None:
        self._out.close()


Chunks = _Chunks  # tiering streams a day the same way


class ExportRunner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        export_dir: Path,
        *,
        worker: str,
        lease_seconds: float = 120.0,
        concurrency: int = 2,
        chunk_bytes: int = 16 << 20,
        max_attempts: int = 3,
        tier_store: TierStore | None = None,
    ) -> None:
        self.pool = pool
        self.export_dir = export_dir
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self.chunk_bytes = chunk_bytes
        self.max_attempts = max_attempts
        self.tier_store = tier_store  # where tiered days are read from (decision 0077)
        self._stopping = False

    def stop(self) -> None:
        """Finish the days being written, then leave the job to be claimed again."""
        self._stopping = True

    async def run_next(self) -> bool:
        """Claim and run one job to its end; False when there was none to claim."""
        job = await repo.claim(self.pool, self.worker, self.lease_seconds)
        if job is None:
            return False
        await self.run(job)
        return True

    async def run_all(self) -> None:
        """One pass of the service's loop: every job waiting, one after another."""
        while not self._stopping and await self.run_next():
            pass

    async def run(self, job: ExportJob) -> None:
        log.info("export started", export_id=str(job.export_id), format=str(job.format))
        if job.attempts > self.max_attempts:  # it took its replica down that often
            error = f"gave up after {job.attempts - 1} attempts that did not finish"
            await repo.finish(self.pool, job.export_id, self.worker, error)
            return
        try:
            if await repo.withdrawn(self.pool, job.export_id):  # by an erasure, before it ran
                await repo.finish(self.pool, job.export_id, self.worker)
                return
            await self._run(job)
        except* _LeaseLost:
            log.warning("export taken over by another replica", export_id=str(job.export_id))
        except* _Stopping:
            await repo.release(self.pool, job.export_id, self.worker)
        except* Exception as group:
            exc = group.exceptions[0]
            if is_transient(exc):
                await repo.release(self.pool, job.export_id, self.worker)
                raise  # the loop logs it; the job is claimed again on a later pass
            log.exception("export failed", export_id=str(job.export_id))
            await repo.finish(self.pool, job.export_id, self.worker, f"{type(exc).__name__}: {exc}")
        finally:
            await self._drop_if_withdrawn(job)

    async def _drop_if_withdrawn(self, job: ExportJob) -> None:
        """An erasure withdrew the job while it ran (ingest.erasure.withdraw_exports): days
        written before it may hold the erased participant, so whatever way the run ended
        (done, failed, stopped, taken over) no file of it stays."""
        try:
            if not await repo.withdrawn(self.pool, job.export_id):
                return
        except Exception:  # the database is gone: the next run of the job drops them
            log.warning("could not check an export for withdrawal", export_id=str(job.export_id))
            return
        directory = job_dir(self.export_dir, job.export_id)
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
        log.info("export withdrawn: its files deleted", export_id=str(job.export_id))

    async def _run(self, job: ExportJob) -> None:
        if job.parts_total is None:
            await repo.plan(self.pool, job, self.worker)
        directory = job_dir(self.export_dir, job.export_id)
        directory.mkdir(parents=True, exist_ok=True)
        todo = await repo.parts_to_do(self.pool, job.export_id)
        queue: asyncio.Queue[asyncpg.Record] = asyncio.Queue()
        for part in todo:
            queue.put_nowait(part)
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(self.concurrency, len(todo)))):
                group.create_task(self._parts(job, directory, queue))
        await repo.finish(self.pool, job.export_id, self.worker)
        log.info("export done", export_id=str(job.export_id))

    async def _parts(
        self, job: ExportJob, directory: Path, queue: asyncio.Queue[asyncpg.Record]
    ) -> None:
        while not queue.empty():
            if self._stopping:
                raise _Stopping
            part = queue.get_nowait()
            if not await repo.renew(self.pool, job.export_id, self.worker, self.lease_seconds):
                raise _LeaseLost
            days = part_days(part["day"], part["last_day"])
            done = await self._write_part(job, directory / part["file_name"], days)
            if not await repo.part_done(
                self.pool,
                job.export_id,
                self.worker,
                part["part"],
                done.rows,
                done.size,
                done.sha256,
            ):
                raise _LeaseLost

    async def _write_part(self, job: ExportJob, path: Path, days: list[date]) -> PartResult:
        """The part's days in order, each from its partition or its tier files, into one
        file."""
        partial = path.with_name(f"{path.name}.{self.worker}.partial")
        out = HashingFile(partial)
        try:
            chunks = _Chunks(writer(job.format, out), self.chunk_bytes)
            before = await tier_repo.states(self.pool, days[0], days[-1])
            for day in days:
                start, end = day_bounds(day)
                async with self.pool.acquire() as conn:
                    await repo.copy_part(conn, job, start, end, chunks)
                await self._tiered_rows(job, day, chunks)
            if await tier_repo.states(self.pool, days[0], days[-1]) != before:
                raise DayMoved(f"days {days[0]}..{days[-1]} moved tier during the export")
            await chunks.flush(last=True)
            await asyncio.to_thread(_close, chunks, out)
        except BaseException:
            out.close()
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        os.replace(partial, path)  # whole or not at all: a reader never sees half a day
        return PartResult(chunks.rows, out.size, out.sha256.hexdigest())

    async def _tiered_rows(self, job: ExportJob, day: date, chunks: _Chunks) -> None:
        """A tiered day's rows of the job, from its files (decision 0077), through the same
        writer as rows from PostgreSQL. Nothing for a day in PostgreSQL."""
        paths = await tiered_day_files(self.pool, job.study_id, day, job.participant_id)
        if paths is None:
            return
        if self.tier_store is None:
            raise RuntimeError(f"day {day} is tiered and this runner has no tier store")
        store = self.tier_store
        ids = await repo.participant_ids(self.pool, job)
        with_received = job.format is not ExportFormat.FHIR_NDJSON
        for path in paths:
            lines = export_batches(store, path, ids, job.as_of, with_received_at=with_received)
            while (data := await asyncio.to_thread(next, lines, None)) is not None:
                await chunks(data)


def _close(chunks: _Chunks, out: HashingFile) -> None:
    chunks.close()
    out.flush()
    os.fsync(out.fileno())
    out.close()

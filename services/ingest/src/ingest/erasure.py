"""Ingest's part of an erasure (issue 18, decision 0086).

Always: the participant's devices are revoked and their token hashes replaced by random
values (no credential of theirs is left). When the study does not keep data collected
under consent (`erasure.keep_collected_data: false`): `erase_from_archive` removes the
participant's readings from every tier of the archive: the PostgreSQL partitions (and
detached day tables still waiting to be tiered or dropped) and the Parquet files of the
tier, each affected file rewritten without the participant's rows, the manifest
(`archive_tier_files`, `archive_tiers`) updated with the new rows, bytes, SHA-256 and
checksum. When the study keeps it, the readings stay: they carry only pseudonymous ids.

The file rewrite is not part of the database transaction: if the transaction rolls back
after a file was rewritten, the redelivered request rewrites it again (there is nothing
of the participant left to remove) and records the manifest then.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from trialstream.db import DbConnection
from trialstream.erasure import Eraser
from trialstream.events.erasures import ErasureRequested

from ingest.exports_jobs import job_dir
from ingest.tiering import bucket_of, checksum, checksum_hex
from ingest.tiering_store import ROW_GROUP_ROWS, TIER_SCHEMA, TierStore

# Tables that hold archived readings outside the partitioned `readings` (whose DELETE
# reaches every attached partition): detached days and the pre-0050 table.
_READING_TABLES = """
SELECT c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname LIKE 'readings%'
  AND EXISTS (SELECT 1 FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attname = 'participant_id' AND NOT a.attisdropped)
ORDER BY 1
"""
_REVOKE_DEVICES = """
UPDATE devices SET token_hash = 'erased:' || md5(random()::text || device_id),
                   revoked_at = coalesce(revoked_at, now())
WHERE participant_id = $1 AND token_hash NOT LIKE 'erased:%'
RETURNING device_id
"""
_TIER_FILES = """
SELECT f.day, f.study_id, f.bucket, f.path, f.rows, f.checksum, t.buckets
FROM archive_tier_files f JOIN archive_tiers t USING (day)
WHERE t.status = 'tiered' AND f.study_id = $1
ORDER BY f.day
"""
_UPDATE_FILE = """
UPDATE archive_tier_files SET rows = $4, bytes = $5, sha256 = $6, checksum = $7
WHERE day = $1 AND study_id = $2 AND bucket = $3
"""
# Exports that may hold the participant's readings: the study's, whole or theirs alone,
# finished or running (a running job may have written days before the erasure; it deletes
# its files when it ends, exports_jobs). A queued job has read nothing yet: it will read
# the archive after the erasure and is left to run.
_EXPORTS_HOLDING = """
UPDATE exports SET expired_at = now(), expired_reason = $3
WHERE study_id = $1 AND (participant_id IS NULL OR participant_id = $2) AND expired_at IS NULL
  AND status <> 'queued'
RETURNING export_id
"""
WITHDRAWN = "withdrawn by an erasure: it held readings of an erased participant"
_DAY_FILES = "SELECT rows, checksum FROM archive_tier_files WHERE day = $1"
_UPDATE_DAY = "UPDATE archive_tiers SET rows = $2, checksum = $3 WHERE day = $1"


def _without(store: TierStore, path: str, participant_id: str) -> tuple[int, Any] | None:
    """Rewrite one tier file without the participant's rows (blocking): None if none of
    theirs is in it, else (rows removed, (rows, bytes, sha256, checksum) of the new file)."""
    full = store.full(path)
    with store.fs.open(full, "rb") as f:
        table = pq.read_table(io.BytesIO(f.read()))
    keep = pc.not_equal(table["participant_id"].cast(pa.string()), participant_id)
    kept = table.filter(keep)
    removed = table.num_rows - kept.num_rows
    if removed == 0:
        return None
    sink = io.BytesIO()
    pq.write_table(kept.cast(TIER_SCHEMA), sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    data = sink.getvalue()
    with store.fs.open(full, "wb") as f:
        f.write(data)
    rows, total = checksum([kept])
    return removed, (rows, len(data), hashlib.sha256(data).hexdigest(), checksum_hex(total))


async def erase_from_archive(
    conn: DbConnection, store: TierStore | None, participant_id: str, study_id: str
) -> dict[str, int]:
    """Erase this participant from the readings archive, every tier: the one function the
    archive's erasure goes through."""
    rows = 0
    for table in await conn.fetch(_READING_TABLES):
        status = await conn.execute(
            f'DELETE FROM "{table["relname"]}" WHERE participant_id = $1',  # noqa: S608 - a catalogue name
            participant_id,
        )
        rows += int(status.split()[-1])
    files = tier_rows = 0
    if store is not None:
        days: set[Any] = set()
        for f in await conn.fetch(_TIER_FILES, study_id):
            if f["bucket"] != bucket_of(participant_id, f["buckets"]):
                continue
            done = await asyncio.to_thread(_without, store, f["path"], participant_id)
            if done is None:
                continue
            removed, (new_rows, size, sha, total) = done
            await conn.execute(
                _UPDATE_FILE, f["day"], f["study_id"], f["bucket"], new_rows, size, sha, total
            )
            days.add(f["day"])
            files, tier_rows = files + 1, tier_rows + removed
        for day in sorted(days):
            parts = await conn.fetch(_DAY_FILES, day)
            total = sum(int(p["checksum"], 16) for p in parts)
            await conn.execute(_UPDATE_DAY, day, sum(p["rows"] for p in parts), checksum_hex(total))
    return {
        "archive_rows": rows,
        "tier_files_rewritten": files,
        "tier_rows": tier_rows,
    }


async def withdraw_exports(
    conn: DbConnection, export_dir: Path, participant_id: str, study_id: str
) -> int:
    """Every export of the study that may hold the participant's readings is marked expired
    with the reason and its files deleted (after the mark, so a rollback leaves a job whose
    files are gone but which still says so on redelivery)."""
    rows = await conn.fetch(_EXPORTS_HOLDING, study_id, participant_id, WITHDRAWN)
    for row in rows:
        directory = job_dir(export_dir, row["export_id"])
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
    return len(rows)


def eraser(store: TierStore | None, export_dir: Path | None = None) -> Eraser:
    """Ingest's `erase` for trialstream.erasure.follow_erasures."""

    async def erase(conn: DbConnection, request: ErasureRequested) -> dict[str, int]:
        devices = await conn.fetch(_REVOKE_DEVICES, request.participant_id)
        erased = {"device_tokens": len(devices)}
        if not request.keep_collected_data:
            erased |= await erase_from_archive(
                conn, store, request.participant_id, request.study_id
            )
            if export_dir is not None:
                erased["exports_withdrawn"] = await withdraw_exports(
                    conn, export_dir, request.participant_id, request.study_id
                )
        return erased

    return erase


__all__ = ["erase_from_archive", "eraser", "withdraw_exports"]

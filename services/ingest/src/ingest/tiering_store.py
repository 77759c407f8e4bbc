"""The tier's files, on any filesystem fsspec knows (decision 0077): a local directory by
default, `s3://bucket/prefix` with s3fs installed (`trialstream-ingest[s3]`), `memory://`
in tests. Everything here is blocking; callers run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import fsspec  # type: ignore[import-untyped]  # fsspec ships no type hints
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pyarrow ships no type hints

from ingest.exports_formats import PARQUET_SCHEMA
from ingest.tiering import checksum, file_path

# The export's Parquet schema, but the participant id a plain string: pyarrow skips row
# groups by their min/max statistics only for a column that is not dictionary-typed in
# Arrow (Parquet dictionary-encodes it in the file either way). Row groups of 16 k rows:
# a participant's day is one or two of them (measured: 64 k rows read 2-3x slower).
TIER_SCHEMA = PARQUET_SCHEMA.set(
    PARQUET_SCHEMA.get_field_index("participant_id"), pa.field("participant_id", pa.string())
)
ROW_GROUP_ROWS = 16 * 1024


@dataclass(frozen=True)
class WrittenFile:
    study_id: str
    bucket: int
    path: str  # relative to the root
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class FileCheck:
    rows: int
    sha256: str
    checksum: int


class _HashingSink:
    """A file being written, hashed and counted on the way (file-like enough for Parquet)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    def write(self, data: bytes | memoryview) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        self._raw.close()


class TierStore:
    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        self.fs: Any = fs
        self.root: str = root.rstrip("/")

    def full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def open_writer(self, study_id: str, bucket: int, day: date) -> DayFileWriter:
        return DayFileWriter(self, study_id, bucket, day)

    def check(self, path: str) -> FileCheck:
        """Read a written file back: its bytes' SHA-256, and its rows' count and checksum
        as Parquet gives them (what a reader will get)."""
        with self.fs.open(self.full(path), "rb") as f:
            data = f.read()
        table = pq.read_table(io.BytesIO(data))
        rows, total = checksum([table])
        return FileCheck(rows, hashlib.sha256(data).hexdigest(), total)

    def read(
        self,
        paths: Sequence[str],
        participant_id: str | None,
        start: datetime | None = None,
        end: datetime | None = None,
        metric: str | None = None,
    ) -> pa.Table:
        """The rows of these files, of one participant (or all), in a time range. Filters
        go to Parquet: row groups whose statistics exclude the participant are skipped."""
        filters: list[tuple[str, str, Any]] = []
        if participant_id is not None:
            filters.append(("participant_id", "=", participant_id))
        if start is not None:
            filters.append(("measured_at", ">=", start))
        if end is not None:
            filters.append(("measured_at", "<", end))
        if metric is not None:
            filters.append(("metric", "=", metric))
        tables = [
            pq.read_table(self.full(p), filesystem=self.fs, filters=filters or None) for p in paths
        ]
        return pa.concat_tables(tables) if tables else TIER_SCHEMA.empty_table()

    def remove(self, paths: Sequence[str]) -> None:
        for path in paths:
            if self.fs.exists(self.full(path)):
                self.fs.rm(self.full(path))


class DayFileWriter:
    """One study's, bucket's and day's file. Written at its final name: until the day is
    recorded tiered no reader looks at it, and a redo writes the same rows to the same
    name again."""

    def __init__(self, store: TierStore, study_id: str, bucket: int, day: date) -> None:
        self.study_id, self.bucket = study_id, bucket
        self.path = file_path(study_id, bucket, day)
        full = store.full(self.path)
        store.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
        self._sink = _HashingSink(store.fs.open(full, "wb"))
        self._writer = pq.ParquetWriter(self._sink, TIER_SCHEMA, compression="zstd")
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows

    def close(self) -> WrittenFile:
        self._writer.close()
        self._sink.flush()
        self._sink.close()
        return WrittenFile(
            self.study_id,
            self.bucket,
            self.path,
            self.rows,
            self._sink.size,
            self._sink.sha256.hexdigest(),
        )

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._sink.close()

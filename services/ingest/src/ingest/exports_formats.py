"""The three export formats, written from chunks of PostgreSQL's CSV output (COPY ... TO
STDOUT): CSV as it comes; Parquet and FHIR NDJSON through Arrow, column at a time in
C++ (no Python loop per reading), so a chunk costs about as much to convert as
PostgreSQL spent producing it.

A chunk is a whole number of CSV lines of `COLUMNS`, timestamps in UTC in PostgreSQL's ISO
style (`2026-11-04 07:03:00.25+00`). Every writer is used from one thread at a time.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.compute as pc  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.csv as pacsv  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pyarrow ships no type hints

from ingest.exports import COLUMNS, ExportFormat

_TEXT = pa.string()
_IDS = pa.dictionary(pa.int32(), pa.string())  # few distinct values: read once each
_UTC = pa.timestamp("us", tz="UTC")
PARQUET_SCHEMA = pa.schema(
    [
        ("event_id", _TEXT),
        ("participant_id", _IDS),
        ("device_id", _IDS),
        ("metric", _IDS),
        ("value", pa.float64()),
        ("unit", _IDS),
        ("measured_at", _UTC),
        ("received_at", _UTC),
    ]
)
# FHIR lines keep PostgreSQL's text of every value (no parse, no re-format): only the
# identifiers are escaped for JSON and the timestamps made FHIR dateTimes.
_AS_TEXT = pa.schema(
    [
        (name, _IDS if name in ("participant_id", "device_id", "metric") else _TEXT)
        for name in COLUMNS
    ]
)

# LOINC code and UCUM unit of each metric (the FHIR vital-signs profile's codes where it
# has one); the unit string stays Open mHealth's, as archived, in `unit`.
LOINC: Mapping[str, tuple[str, str, str, str, str]] = {
    # metric: (LOINC code, display, UCUM code, unit shown, observation category)
    "heart-rate": ("8867-4", "Heart rate", "/min", "beats/min", "vital-signs"),
    "oxygen-saturation": (
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "%",
        "%",
        "vital-signs",
    ),
    "body-temperature": ("8310-5", "Body temperature", "Cel", "C", "vital-signs"),
    "respiratory-rate": ("9279-1", "Respiratory rate", "/min", "breaths/min", "vital-signs"),
    "step-count": (
        "55423-8",
        "Number of steps in unspecified time Pedometer",
        "{steps}",
        "steps",
        "activity",
    ),
}
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _fhir_blocks(metric: str, loinc: tuple[str, str, str, str, str] | None) -> tuple[str, str]:
    """The JSON between `"category":` and `,"subject"`, and between `"value":<v>,` and `}`."""
    if loinc is None:  # not one of the five metrics (never archived today): its name only
        name = json.dumps(metric)
        return '[],"code":{"text":' + name + "}", '"unit":' + name
    code, display, ucum, shown, category = loinc
    head = (
        json.dumps([{"coding": [{"system": _CATEGORY, "code": category}]}], separators=(",", ":"))
        + ',"code":'
        + json.dumps(
            {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            separators=(",", ":"),
        )
    )
    unit = json.dumps(
        {"unit": shown, "system": "http://unitsofmeasure.org", "code": ucum}, separators=(",", ":")
    )
    return head, unit[1:-1]


class ChunkWriter(Protocol):
    def write(self, chunk: bytes) -> int:
        """Append a chunk of COPY CSV lines; returns the rows written."""

    def close(self) -> None: ...


class CsvWriter:
    """The CSV file: a header, then PostgreSQL's lines unchanged."""

    def __init__(self, out: HashingFile) -> None:
        self._out = out
        out.write((",".join(COLUMNS) + "\n").encode())

    def write(self, chunk: bytes) -> int:
        self._out.write(chunk)
        return chunk.count(b"\n")

    def close(self) -> None:
        pass


def _read(chunk: bytes, schema: pa.Schema) -> pa.Table:
    return pacsv.read_csv(
        io.BytesIO(chunk),
        read_options=pacsv.ReadOptions(column_names=COLUMNS, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )


class ParquetWriter:
    """One Parquet file, a row group per chunk."""

    def __init__(self, out: HashingFile) -> None:
        self._writer = pq.ParquetWriter(out, PARQUET_SCHEMA, compression="zstd")

    def write(self, chunk: bytes) -> int:
        table = _read(chunk, PARQUET_SCHEMA)
        self._writer.write_table(table)
        return int(table.num_rows)

    def close(self) -> None:
        self._writer.close()


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # what JSON escapes in a string: quote, backslash, controls


def _json_strings(column: pa.ChunkedArray) -> pa.Array:
    """A dictionary-encoded text column as JSON string bodies (escaped, no quotes). The
    identifiers are validated at the door (letters, digits, `_.:-`), so normally nothing
    needs escaping and the column is used as it is; otherwise each distinct value is
    escaped once, in Python, and taken per row."""
    column = column.combine_chunks()
    values = column.dictionary
    if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        values = pa.array([json.dumps(v)[1:-1] for v in values.to_pylist()], _TEXT)
    return values.take(column.indices)


def _fhir_time(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """`2026-11-04 07:03:00.25+00` -> `2026-11-04T07:03:00.25` (a FHIR dateTime once `Z`
    follows). COPY prints every time in UTC (`+00`), so the `T` goes in and the zone comes
    off at fixed places (a fifth of the cost of searching for them). A time in another
    zone (never, from the archive or the tier) is an error, not a wrong instant."""
    if not pc.all(pc.ends_with(column, "+00")).as_py():
        raise ValueError("export times must be UTC (`+00`)")
    return pc.utf8_slice_codeunits(pc.binary_replace_slice(column, 10, 11, "T"), 0, -3)


def fhir_lines(table: pa.Table) -> list[pa.Array]:
    """One FHIR R4 Observation per reading, as NDJSON lines (each ending in a newline), in
    one array per metric: within a metric the code and unit are constants, so every line
    is one join of columns and constants (taking a per-row copy of them cost more than the
    rest together)."""
    metric = table["metric"].combine_chunks()
    out = []
    for index, name in enumerate(metric.dictionary.to_pylist()):
        rows = table.filter(pc.equal(metric.indices, index))
        if rows.num_rows == 0:
            continue
        head, unit = _fhir_blocks(name, LOINC.get(name))
        parts: list[pa.Array | str] = [
            '{"resourceType":"Observation","id":"',
            rows["event_id"].combine_chunks(),
            '","status":"final","category":' + head + ',"subject":{"reference":"Patient/',
            _json_strings(rows["participant_id"]),
            '"},"effectiveDateTime":"',
            _fhir_time(rows["measured_at"]).combine_chunks(),
            'Z","valueQuantity":{"value":',
            rows["value"].combine_chunks(),
            "," + unit + '},"device":{"reference":"Device/',
            _json_strings(rows["device_id"]),
            '"}}\n',
        ]
        out.append(pc.binary_join_element_wise(*parts, ""))
    return out


class FhirNdjsonWriter:
    """FHIR Bulk Data NDJSON: one `Observation` resource per line."""

    def __init__(self, out: HashingFile) -> None:
        self._out = out

    def write(self, chunk: bytes) -> int:
        table = _read(chunk, _AS_TEXT)
        for lines in fhir_lines(table):
            _, offsets, data = lines.buffers()
            bounds = memoryview(offsets).cast("i")  # int32 offsets of the lines in `data`
            start, end = bounds[lines.offset], bounds[lines.offset + len(lines)]
            self._out.write(memoryview(data)[start:end])  # the lines, uncopied
        return int(table.num_rows)

    def close(self) -> None:
        pass


def writer(fmt: ExportFormat, out: HashingFile) -> ChunkWriter:
    if fmt is ExportFormat.CSV:
        return CsvWriter(out)
    if fmt is ExportFormat.PARQUET:
        return ParquetWriter(out)
    return FhirNdjsonWriter(out)


class HashingFile:
    """A file being written whose bytes are counted and hashed on the way (the part's
    checksum, shown with its download link). File-like enough for Parquet's writer."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, data: bytes | memoryview) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._file.write(data)
        return len(data)

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

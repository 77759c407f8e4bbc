"""Export jobs' pure parts: days, names, who sees a job, and the three formats written
from PostgreSQL's CSV (as COPY sends it)."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fhir.resources.R4B.observation import Observation
from ingest.exports import (
    COLUMNS,
    ExportFormat,
    ExportJob,
    ExportStatus,
    PartView,
    PlannedPart,
    day_bounds,
    file_name,
    part_days,
    plan_days,
    plan_parts,
    present,
    within_scope,
)
from ingest.exports_formats import LOINC, HashingFile, writer
from ingest.exports_jobs import _Chunks

# As COPY ... (FORMAT csv) prints them with TimeZone UTC and DateStyle ISO.
ROWS = [
    "0b7f5c1e-8f0e-4c53-9f0e-000000000001,P-1,watch-1,heart-rate,72,beats/min,"
    "2026-11-04 07:03:00.25+00,2026-11-04 07:03:02+00",
    "0b7f5c1e-8f0e-4c53-9f0e-000000000002,P-1,watch-1,oxygen-saturation,97.5,%,"
    "2026-11-04 07:04:00+00,2026-11-04 07:04:01.123456+00",
    "0b7f5c1e-8f0e-4c53-9f0e-000000000003,P-2,watch:2,body-temperature,36.55,C,"
    "2026-11-04 23:59:59.999999+00,2026-11-05 00:00:01+00",
    "0b7f5c1e-8f0e-4c53-9f0e-000000000004,P-2,watch:2,respiratory-rate,14,breaths/min,"
    "2026-11-04 08:00:00+00,2026-11-04 08:00:01+00",
    "0b7f5c1e-8f0e-4c53-9f0e-000000000005,P.3,dev-3,step-count,120,steps,"
    "2026-11-04 09:00:00+00,2026-11-04 09:00:01+00",
]
CHUNK = ("\n".join(ROWS) + "\n").encode()
FHIR_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def _write(fmt: ExportFormat, tmp_path: Path, chunks: list[bytes]) -> tuple[Path, int, HashingFile]:
    path = tmp_path / file_name(date(2026, 11, 4), fmt)
    out = HashingFile(path)
    w = writer(fmt, out)
    rows = sum(w.write(c) for c in chunks)
    w.close()
    out.close()
    return path, rows, out


def test_a_job_is_cut_into_every_utc_day_from_its_first_reading_to_its_last() -> None:
    berlin = timezone(timedelta(hours=1))
    first = datetime(2026, 11, 4, 0, 30, tzinfo=berlin)  # still 3 November in UTC
    last = datetime(2026, 11, 6, 23, 59, tzinfo=UTC)
    assert plan_days(first, last) == [date(2026, 11, d) for d in (3, 4, 5, 6)]
    assert plan_days(None, None) == []
    start, end = day_bounds(date(2026, 11, 4))
    assert (start.isoformat(), end - start) == ("2026-11-04T00:00:00+00:00", timedelta(days=1))


def test_files_are_named_by_day_and_fhir_ones_by_resource_type() -> None:
    day = date(2026, 11, 4)
    assert file_name(day, ExportFormat.CSV) == "readings-2026-11-04.csv"
    assert file_name(day, ExportFormat.PARQUET) == "readings-2026-11-04.parquet"
    assert file_name(day, ExportFormat.FHIR_NDJSON) == "Observation-2026-11-04.ndjson"


def test_a_site_limited_exporter_sees_only_jobs_within_their_sites() -> None:
    assert within_scope(None, None)
    assert within_scope(None, ["a"])
    assert within_scope(["a", "b"], ["a"])
    assert not within_scope(["a"], None)  # a whole-study job holds other sites
    assert not within_scope(["a"], ["a", "b"])


def test_csv_has_a_header_and_each_reading_once(tmp_path: Path) -> None:
    path, rows, out = _write(ExportFormat.CSV, tmp_path, [CHUNK])
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert rows == len(table) == 5
    assert tuple(table[0]) == COLUMNS
    assert [r["event_id"][-1] for r in table] == ["1", "2", "3", "4", "5"]
    assert (out.size, out.sha256.hexdigest()) == (path.stat().st_size, _sha256(path))


def test_parquet_keeps_types_and_every_reading(tmp_path: Path) -> None:
    half = CHUNK.index(b"\n", len(CHUNK) // 2) + 1  # two chunks: two row groups
    path, rows, _ = _write(ExportFormat.PARQUET, tmp_path, [CHUNK[:half], CHUNK[half:]])
    table = pq.read_table(path)
    assert rows == table.num_rows == 5
    assert table.column_names == list(COLUMNS)
    assert table["value"].to_pylist() == [72.0, 97.5, 36.55, 14.0, 120.0]
    measured = table["measured_at"].to_pylist()
    assert measured[0] == datetime(2026, 11, 4, 7, 3, 0, 250000, tzinfo=UTC)
    assert measured[2] == datetime(2026, 11, 4, 23, 59, 59, 999999, tzinfo=UTC)
    assert table["participant_id"].to_pylist()[4] == "P.3"


def test_fhir_ndjson_is_one_valid_observation_per_reading_with_loinc_and_ucum(
    tmp_path: Path,
) -> None:
    path, rows, _ = _write(ExportFormat.FHIR_NDJSON, tmp_path, [CHUNK])
    lines = path.read_text().splitlines()
    assert rows == len(lines) == 5
    by_id = {}
    for line in lines:
        resource = json.loads(line)
        Observation.model_validate(resource)  # FHIR R4(B): raises if not an Observation
        by_id[resource["id"][-1]] = resource
    hr = by_id["1"]
    assert hr["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "8867-4",
        "display": "Heart rate",
    }
    assert hr["valueQuantity"] == {
        "value": 72,
        "unit": "beats/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert hr["subject"] == {"reference": "Patient/P-1"}
    assert hr["device"] == {"reference": "Device/watch-1"}
    assert hr["effectiveDateTime"] == "2026-11-04T07:03:00.25Z"
    assert hr["category"][0]["coding"][0]["code"] == "vital-signs"
    codes = {
        k: (r["code"]["coding"][0]["code"], r["valueQuantity"]["code"]) for k, r in by_id.items()
    }
    assert codes == {
        "1": ("8867-4", "/min"),
        "2": ("59408-5", "%"),
        "3": ("8310-5", "Cel"),
        "4": ("9279-1", "/min"),
        "5": ("55423-8", "{steps}"),
    }
    assert by_id["5"]["category"][0]["coding"][0]["code"] == "activity"
    assert all(FHIR_DATETIME.match(r["effectiveDateTime"]) for r in by_id.values())
    assert set(LOINC) == {
        "heart-rate",
        "oxygen-saturation",
        "body-temperature",
        "respiratory-rate",
        "step-count",
    }


def test_fhir_lines_escape_identifiers_for_json(tmp_path: Path) -> None:
    odd = (
        b'0b7f5c1e-8f0e-4c53-9f0e-000000000009,"P""q\\\\x",dev-9,heart-rate,60,beats/min,'
        b"2026-11-04 07:00:00+00,2026-11-04 07:00:01+00\n"
    )
    path, _rows, _ = _write(ExportFormat.FHIR_NDJSON, tmp_path, [odd])
    resource = json.loads(path.read_text())
    assert resource["subject"]["reference"] == 'Patient/P"q\\\\x'


def test_an_unknown_metric_is_exported_by_name_without_a_loinc_code(tmp_path: Path) -> None:
    other = (
        b"0b7f5c1e-8f0e-4c53-9f0e-00000000000a,P-1,watch-1,glucose,5.5,mmol/L,"
        b"2026-11-04 07:00:00+00,2026-11-04 07:00:01+00\n"
    )
    path, _, _ = _write(ExportFormat.FHIR_NDJSON, tmp_path, [other])
    resource = json.loads(path.read_text())
    Observation.model_validate(resource)
    assert resource["code"] == {"text": "glucose"}


def test_a_job_shows_progress_and_a_link_per_finished_file() -> None:
    export_id = uuid.uuid4()
    now = datetime(2026, 11, 4, tzinfo=UTC)
    job = ExportJob(
        export_id,
        "s1",
        None,
        ExportFormat.CSV,
        ExportStatus.RUNNING,
        "staff:dm",
        now,
        now,
        None,
        now,
        None,
        3,
        None,
    )
    parts = [
        PartView(1, date(2026, 11, 1), "readings-2026-11-01.csv", 10, 500, "ab"),
        PartView(2, date(2026, 11, 2), "readings-2026-11-02.csv", 7, 300, "cd"),
        PartView(3, date(2026, 11, 3), "readings-2026-11-03.csv", None, None, None),
    ]
    shown = present(job, parts)
    assert shown["progress"] == {"rows_written": 17, "parts_done": 2, "parts_total": 3}
    assert [f["url"] for f in shown["files"]] == [
        f"/v1/exports/{export_id}/files/readings-2026-11-01.csv",
        f"/v1/exports/{export_id}/files/readings-2026-11-02.csv",
    ]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_an_empty_day_still_writes_a_readable_file(fmt: ExportFormat, tmp_path: Path) -> None:
    path, rows, _ = _write(fmt, tmp_path, [])
    assert rows == 0
    assert path.exists()
    if fmt is ExportFormat.PARQUET:
        assert pq.read_table(path).num_rows == 0


class _Lines:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, chunk: bytes) -> int:
        self.chunks.append(chunk)
        return chunk.count(b"\n")

    def close(self) -> None:
        pass


async def test_copy_output_reaches_a_writer_in_whole_lines_however_it_arrives() -> None:
    lines = _Lines()
    chunks = _Chunks(lines, chunk_bytes=100)
    for i in range(0, len(CHUNK), 37):  # pieces that cut lines anywhere
        await chunks(CHUNK[i : i + 37])
    await chunks.flush(last=True)
    assert len(lines.chunks) > 1
    assert all(c.endswith(b"\n") for c in lines.chunks)
    assert b"".join(lines.chunks) == CHUNK
    assert chunks.rows == 5


def test_a_participant_s_export_is_one_part_of_all_its_days() -> None:
    days = [date(2026, 11, d) for d in (1, 2, 3)]
    (whole,) = plan_parts(days, ExportFormat.FHIR_NDJSON, one_file=True)
    assert whole == PlannedPart(days[0], days[-1], "Observation-2026-11-01--2026-11-03.ndjson")
    assert part_days(whole.day, whole.last_day) == days
    study = plan_parts(days, ExportFormat.CSV, one_file=False)
    assert [p.file_name for p in study] == [f"readings-2026-11-0{d}.csv" for d in (1, 2, 3)]
    assert [part_days(p.day, p.last_day) for p in study] == [[d] for d in days]
    (single,) = plan_parts(days[:1], ExportFormat.CSV, one_file=True)
    assert single.file_name == "readings-2026-11-01.csv"
    assert plan_parts([], ExportFormat.CSV, one_file=True) == []

"""The pure parts of tiering (decision 0077): layout, checksums, and the CSV text a tiered
day is exported as. (That PostgreSQL computes the same buckets and checksums is proven by
the integration tests, which tier real partitions and compare.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from ingest.domain import CheckedBatch, RecordResult, Status, refuse_days
from ingest.exports_formats import PARQUET_SCHEMA
from ingest.tiering import (
    bucket_of,
    checksum,
    could_be_tiered,
    day_span,
    file_path,
    pg_csv,
    tier_cutoff,
)
from ingest.tiering_jobs import compare
from ingest.tiering_store import FileCheck, WrittenFile
from trialstream.validation import ReadingUpload

WHEN = datetime(2026, 11, 4, 7, 3, 0, 250000, tzinfo=UTC)


def table(values: list[float], times: list[datetime]) -> pa.Table:
    n = len(values)
    return pa.table(
        {
            "event_id": [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)],
            "participant_id": ["P-1"] * n,
            "device_id": ["dev-1"] * n,
            "metric": ["heart-rate"] * n,
            "value": values,
            "unit": ["beats/min"] * n,
            "measured_at": times,
            "received_at": times,
        },
        schema=PARQUET_SCHEMA,
    )


def test_files_are_laid_out_by_study_bucket_and_day_in_hive_style() -> None:
    assert file_path("S 1/x", 3, date(2026, 11, 4)) == (
        "study_id=S%201%2Fx/bucket=03/day=2026-11-04/readings.parquet"
    )
    assert {bucket_of(f"P-{n}", 16) for n in range(200)} == set(range(16))
    assert bucket_of("P-1", 16) == bucket_of("P-1", 16)


def test_the_checksum_ignores_row_order_and_sees_one_bit_of_one_value() -> None:
    times = [WHEN + timedelta(seconds=i) for i in range(5)]
    rows = table([70.0, 71.5, 36.6, 97.0, 12.0], times)
    shuffled = rows.take([3, 1, 4, 0, 2])
    assert checksum([rows]) == checksum([shuffled.slice(0, 2), shuffled.slice(2)])
    nudged = table([70.0, 71.5, 36.6 + 1e-14, 97.0, 12.0], times)
    assert checksum([nudged])[1] != checksum([rows])[1]
    later = table(
        [70.0, 71.5, 36.6, 97.0, 12.0], [*times[:4], times[4] + timedelta(microseconds=1)]
    )
    assert checksum([later])[1] != checksum([rows])[1]


def test_a_tiered_day_is_exported_as_postgresqls_csv_lines() -> None:
    rows = table([70.0, 36.6], [WHEN, WHEN.replace(microsecond=0)])
    assert pg_csv(rows).decode().splitlines() == [
        "00000000-0000-4000-8000-000000000000,P-1,dev-1,heart-rate,70,beats/min,"
        "2026-11-04 07:03:00.25+00,2026-11-04 07:03:00.25+00",
        "00000000-0000-4000-8000-000000000001,P-1,dev-1,heart-rate,36.6,beats/min,"
        "2026-11-04 07:03:00+00,2026-11-04 07:03:00+00",
    ]
    assert pg_csv(rows, with_received_at=False).decode().splitlines()[0].endswith("+00,")
    assert pg_csv(rows.slice(0, 0)) == b""


def test_which_days_a_range_touches_and_which_may_be_tiered() -> None:
    start = datetime(2026, 11, 3, 23, tzinfo=UTC)
    assert day_span(start, start + timedelta(hours=1)) == (date(2026, 11, 3), date(2026, 11, 3))
    assert day_span(start, start + timedelta(hours=2)) == (date(2026, 11, 3), date(2026, 11, 4))
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    assert tier_cutoff(now, 3) == date(2026, 11, 7)
    assert not could_be_tiered(date(2026, 11, 8), now)
    assert could_be_tiered(date(2026, 11, 7), now)


def test_readings_of_tiered_days_are_refused_with_day_archived() -> None:
    def upload(at: datetime) -> ReadingUpload:
        return ReadingUpload.model_validate(
            {
                "event_id": "00000000-0000-4000-8000-000000000001",
                "participant_id": "P-1",
                "device_id": "dev-1",
                "metric": "heart-rate",
                "value": 60,
                "unit": "beats/min",
                "measured_at": at.isoformat(),
            }
        )

    old, new = upload(WHEN), upload(WHEN + timedelta(days=1))
    checked = CheckedBatch(
        [RecordResult(0, Status.ACCEPTED), RecordResult(1, Status.ACCEPTED)], [(0, old), (1, new)]
    )
    refuse_days(checked, {WHEN.date()})
    assert [r.status for r in checked.results] == [Status.REJECTED, Status.ACCEPTED]
    assert checked.results[0].errors[0]["code"] == "day_archived"
    assert checked.valid == [(1, new)]


def test_files_are_compared_with_postgresql_file_by_file() -> None:
    written = [WrittenFile("S", 0, "a", 10, 100, "h0"), WrittenFile("S", 1, "b", 5, 50, "h1")]
    expected = {("S", 0): (10, 7), ("S", 1): (5, 9)}
    good = [FileCheck(10, "h0", 7), FileCheck(5, "h1", 9)]
    assert compare(expected, written, good) == []
    bad = [FileCheck(10, "hX", 7), FileCheck(4, "h1", 8)]
    problems = compare(expected, written, bad)
    assert any("sha256" in p for p in problems)
    assert any("4 rows" in p for p in problems)
    assert any("checksum" in p for p in problems)
    assert compare({**expected, ("S", 2): (1, 1)}, written, good) == [
        "study S bucket 2: no file written"
    ]

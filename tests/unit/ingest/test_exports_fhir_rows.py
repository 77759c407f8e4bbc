"""The column-wise FHIR writer against a plain per-reading builder (a dict and json.dumps
per row, what the writer replaces for speed): the same Observations, value for value, for
the values that are easy to get wrong in a string join."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation
from ingest.exports import COLUMNS, ExportFormat, file_name
from ingest.exports_formats import LOINC, HashingFile, writer

_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def per_row_observation(row: dict[str, str]) -> dict[str, Any]:
    """The reference: one Observation built as a dict, from one COPY CSV row."""
    metric = row["metric"]
    loinc = LOINC.get(metric)
    quantity: dict[str, Any] = {"value": float(row["value"])}
    if loinc is None:
        category: list[Any] = []
        code: dict[str, Any] = {"text": metric}
        quantity["unit"] = metric
    else:
        loinc_code, display, ucum, shown, kind = loinc
        category = [{"coding": [{"system": _CATEGORY, "code": kind}]}]
        code = {"coding": [{"system": "http://loinc.org", "code": loinc_code, "display": display}]}
        quantity |= {"unit": shown, "system": "http://unitsofmeasure.org", "code": ucum}
    return {
        "resourceType": "Observation",
        "id": row["event_id"],
        "status": "final",
        "category": category,
        "code": code,
        "subject": {"reference": f"Patient/{row['participant_id']}"},
        "effectiveDateTime": datetime.fromisoformat(row["measured_at"]).astimezone(UTC),
        "valueQuantity": quantity,
        "device": {"reference": f"Device/{row['device_id']}"},
    }


def _chunk(rows: list[dict[str, str]]) -> bytes:
    """As COPY ... (FORMAT csv) sends them: quoted only where needed."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    for row in rows:
        out.writerow([row[c] for c in COLUMNS])
    return text.getvalue().encode()


def _row(n: int, metric: str, value: str, measured_at: str, **ids: str) -> dict[str, str]:
    return {
        "event_id": f"0b7f5c1e-8f0e-4c53-9f0e-{n:012d}",
        "participant_id": ids.get("participant_id", f"P-{n}"),
        "device_id": ids.get("device_id", f"watch-{n}"),
        "metric": metric,
        "value": value,
        "unit": "unused",
        "measured_at": measured_at,
        "received_at": "",
    }


TRICKY = [
    _row(1, "heart-rate", "72", "2026-11-04 07:03:00.25+00"),
    _row(2, "oxygen-saturation", "97.5", "2026-11-04 00:00:00+00"),
    _row(3, "body-temperature", "36.55", "2026-11-04 23:59:59.999999+00"),
    _row(4, "respiratory-rate", "1e-05", "2026-11-04 08:00:00.1+00"),
    _row(5, "step-count", "0", "2026-11-04 09:00:00+00"),
    _row(6, "heart-rate", "1.5e+20", "2026-11-04 10:00:00+00"),
    _row(7, "body-temperature", "-3.25", "2026-11-04 11:00:00+00"),
    # ids the door refuses today, escaped all the same if they ever reach the archive
    _row(8, "heart-rate", "60", "2026-11-04 12:00:00+00", participant_id='P-"q",1'),
    _row(9, "heart-rate", "61", "2026-11-04 12:00:01+00", device_id="wätch\\✓\t"),
    _row(10, "weight", "80.5", "2026-11-04 13:00:00+00"),  # not one of the five metrics
]


def _fhir(tmp_path: Path, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    path = tmp_path / file_name(date(2026, 11, 4), ExportFormat.FHIR_NDJSON)
    out = HashingFile(path)
    w = writer(ExportFormat.FHIR_NDJSON, out)
    assert w.write(_chunk(rows)) == len(rows)
    w.close()
    out.close()
    lines = path.read_bytes().decode().splitlines()
    assert len(lines) == len(rows)
    return [json.loads(line) for line in lines]


def test_column_wise_observations_equal_the_per_row_ones(tmp_path: Path) -> None:
    got = {r["id"]: r for r in _fhir(tmp_path, TRICKY)}
    for row in TRICKY:
        want = per_row_observation(row)
        resource = got[row["event_id"]]
        assert list(resource) == list(want)  # the same members, in the same order
        when = resource.pop("effectiveDateTime")
        assert when[10] == "T"
        assert when.endswith("Z")
        assert datetime.fromisoformat(when) == want.pop("effectiveDateTime")
        assert resource == want
        assert type(resource["valueQuantity"]["value"]) in (int, float)


def test_tricky_observations_stay_valid_fhir(tmp_path: Path) -> None:
    for resource in _fhir(tmp_path, TRICKY[:-1]):  # the unknown metric has no coding
        Observation.model_validate(resource)


def test_a_time_not_in_utc_is_refused_not_shifted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="UTC"):
        _fhir(tmp_path, [_row(1, "heart-rate", "72", "2026-11-04 07:03:00+01")])

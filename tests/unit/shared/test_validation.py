from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from trialstream.events.readings import Metric, ReadingReceived
from trialstream.validation import (
    ReadingUpload,
    RecordRejected,
    check,
    normalise,
    parse_upload,
    parse_valid_body,
    received_json,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def raw(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "participant_id": "P-0001",
        "device_id": "wear-1",
        "metric": "heart-rate",
        "value": 72,
        "unit": "beats/min",
        "measured_at": "2026-03-01T11:59:00+00:00",
    }
    return base | overrides


def rejection(**overrides: Any) -> dict[str, str]:
    with pytest.raises(RecordRejected) as caught:
        normalise(parse_upload(raw(**overrides)), received_at=NOW, max_clock_skew=SKEW)
    return {e.field: e.code for e in caught.value.errors}


def test_valid_reading_keeps_its_values_and_gets_received_time() -> None:
    reading = normalise(parse_upload(raw()), received_at=NOW, max_clock_skew=SKEW)
    assert (reading.metric, reading.value, reading.unit) == (Metric.HEART_RATE, 72.0, "beats/min")
    assert reading.occurred_at == NOW


def test_fahrenheit_temperature_is_converted_to_celsius() -> None:
    reading = normalise(
        parse_upload(raw(metric="body-temperature", value=98.6, unit="F")),
        received_at=NOW,
        max_clock_skew=SKEW,
    )
    assert (reading.value, reading.unit) == (37.0, "C")


def test_fahrenheit_is_accepted_for_temperature_only() -> None:
    assert rejection(unit="F") == {"unit": "wrong_unit"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"metric": "glucose"}, {"metric": "enum"}),
        ({"unit": "bpm"}, {"unit": "wrong_unit"}),
        ({"value": 0}, {"value": "implausible_value"}),
        (
            {"metric": "oxygen-saturation", "unit": "%", "value": 101},
            {"value": "implausible_value"},
        ),
        ({"metric": "step-count", "unit": "steps", "value": 3.5}, {"value": "not_whole_steps"}),
        ({"measured_at": "2026-03-01T12:06:00+00:00"}, {"measured_at": "in_future"}),
        ({"measured_at": "2026-03-01T11:59:00"}, {"measured_at": "timezone_aware"}),
        ({"value": "NaN"}, {"value": "finite_number"}),
        ({"participant_id": "jane.doe@example.org"}, {"participant_id": "string_pattern_mismatch"}),
        ({"participant_id": "+15551234567"}, {"participant_id": "string_pattern_mismatch"}),
        ({"heart_rate": 1}, {"heart_rate": "extra_forbidden"}),
    ],
)
def test_invalid_records_name_the_field_and_reason(
    overrides: dict[str, Any], expected: dict[str, str]
) -> None:
    assert rejection(**overrides) == expected


def test_clock_skew_within_allowance_is_accepted() -> None:
    reading = normalise(
        parse_upload(raw(measured_at="2026-03-01T12:04:00+00:00")),
        received_at=NOW,
        max_clock_skew=SKEW,
    )
    assert reading.measured_at > NOW


def test_every_field_error_of_a_record_is_reported() -> None:
    with pytest.raises(RecordRejected) as caught:
        parse_upload({"event_id": "nope", "metric": "heart-rate"})
    fields = {e.field for e in caught.value.errors}
    assert {"event_id", "participant_id", "device_id", "value", "unit", "measured_at"} <= fields


# The whole-body fast path must judge exactly as the per-record path: it may only ever
# accept what every record would pass, with the same values.
FAST_PATH_CASES: list[Any] = [
    raw(),
    raw(value="72.5"),
    raw(value=True),
    raw(value=float("nan")),
    raw(value=1e400),
    raw(metric="Heart-Rate"),
    raw(metric="body-temperature", unit="F", value=100.4),
    raw(event_id="not-a-uuid"),
    raw(event_id=str(uuid.uuid4()).upper()),
    raw(event_id=uuid.uuid4().hex),
    raw(measured_at="2026-03-01T11:59:00"),
    raw(measured_at="2026-03-01T12:59:00+01:00"),
    raw(measured_at="2026-03-01T11:59:00.123456789Z"),
    raw(measured_at=1772366340),
    raw(participant_id="ann@example.org"),
    raw(participant_id=42),
    raw(device_id=""),
    raw(extra_field=1),
    {k: v for k, v in raw().items() if k != "unit"},
    "garbage",
    None,
    [raw()],
]


@pytest.mark.parametrize("record", FAST_PATH_CASES)
def test_fast_path_accepts_only_what_the_per_record_path_accepts(record: Any) -> None:
    fast = parse_valid_body(json.dumps({"readings": [record]}).encode())
    try:
        slow: ReadingUpload | None = parse_upload(json.loads(json.dumps(record)))
    except RecordRejected:
        slow = None
    assert fast == (None if slow is None else [slow])


def test_one_bad_record_sends_the_whole_body_to_the_per_record_path() -> None:
    body = {"readings": [raw(), raw(metric="mood"), raw()], "device_note": "ignored"}
    assert parse_valid_body(json.dumps(body).encode()) is None
    good = {"readings": [raw(), raw()], "device_note": "ignored"}
    assert len(parse_valid_body(json.dumps(good).encode()) or []) == 2


@pytest.mark.parametrize(
    "record",
    [
        raw(),
        raw(metric="body-temperature", unit="F", value=100.4),
        raw(metric="step-count", unit="steps", value=12),
    ],
)
def test_event_bytes_are_the_events_own_serialisation(record: dict[str, Any]) -> None:
    upload = check(parse_upload(record), received_at=NOW, max_clock_skew=SKEW)
    expected = normalise(
        parse_upload(record), received_at=NOW, max_clock_skew=SKEW, study_id="CARDIO-HF"
    )
    [encoded] = received_json([upload], NOW, "CARDIO-HF")
    assert ReadingReceived.model_validate_json(encoded) == expected
    assert json.loads(encoded) == json.loads(expected.model_dump_json())

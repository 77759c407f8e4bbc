from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.domain import Status, Uploader, check_batch
from trialstream.validation import parse_upload

NOW = datetime.now(UTC)
WHO = Uploader(device_id="wear-1", participant_id="P-0001")


def raw(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "participant_id": "P-0001",
        "device_id": "wear-1",
        "metric": "heart-rate",
        "value": 72,
        "unit": "beats/min",
        "measured_at": (NOW - timedelta(minutes=1)).isoformat(),
    }
    return base | overrides


def check(records: list[Any]) -> list[Status]:
    return [
        r.status
        for r in check_batch(
            records, WHO, received_at=NOW, max_clock_skew=timedelta(minutes=5)
        ).results
    ]


def test_one_bad_record_does_not_reject_the_others() -> None:
    assert check([raw(), raw(value=-5), raw()]) == [
        Status.ACCEPTED,
        Status.REJECTED,
        Status.ACCEPTED,
    ]


def test_repeated_event_id_within_a_request_is_a_duplicate() -> None:
    same = raw()
    assert check([same, dict(same)]) == [Status.ACCEPTED, Status.DUPLICATE]


def test_device_may_only_upload_for_its_enrolled_participant() -> None:
    result = check_batch(
        [raw(participant_id="P-0002")], WHO, received_at=NOW, max_clock_skew=timedelta(0)
    )
    assert result.results[0].errors[0]["code"] == "participant_not_enrolled_to_device"
    assert result.valid == []


def test_device_id_must_match_the_credential() -> None:
    result = check_batch(
        [raw(device_id="wear-9")], WHO, received_at=NOW, max_clock_skew=timedelta(0)
    )
    assert result.results[0].errors[0]["code"] == "device_mismatch"


def test_non_object_record_is_rejected_with_a_reason() -> None:
    result = check_batch(["garbage", 3], WHO, received_at=NOW, max_clock_skew=timedelta(0))
    assert [r.status for r in result.results] == [Status.REJECTED, Status.REJECTED]
    assert all(r.errors for r in result.results)


def test_readings_measured_after_withdrawal_are_refused_earlier_ones_kept() -> None:
    withdrawn = Uploader("wear-1", "P-0001", withdrawn_at=NOW - timedelta(minutes=10))
    checked = check_batch(
        [
            raw(measured_at=(NOW - timedelta(minutes=11)).isoformat()),
            raw(measured_at=(NOW - timedelta(minutes=9)).isoformat()),
        ],
        withdrawn,
        received_at=NOW,
        max_clock_skew=timedelta(minutes=5),
    )
    assert [r.status for r in checked.results] == [Status.ACCEPTED, Status.REJECTED]
    assert checked.results[1].errors[0]["code"] == "participant_withdrawn"


def test_a_fast_path_record_rejected_by_the_rules_keeps_its_event_id() -> None:
    upload = parse_upload(raw(value=400))  # well formed, so the whole-body path takes it
    [result] = check_batch(
        [upload], WHO, received_at=NOW, max_clock_skew=timedelta(minutes=5)
    ).results
    assert (result.status, result.event_id) == (Status.REJECTED, str(upload.event_id))
    assert result.errors[0]["code"] == "implausible_value"

"""Discrepancy flag rules, as pure functions over a batch of reading summaries (built from
readings exactly as ingest builds them, one per participant per upload)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from monitoring.rbm.flags import (
    FlagKind,
    FlagRules,
    SummaryBatch,
    after_withdrawal,
    clock_skew,
    epro_contradicts_wearable,
    jumps,
    shared_device,
    slots,
)
from monitoring.settings import MonitoringSettings
from pydantic import ValidationError
from trialstream.events.readings import Metric, ReadingReceived
from trialstream.reading_summaries import summarise

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
RULES = FlagRules()
UNIT = {"heart-rate": "beats/min", "body-temperature": "C", "step-count": "steps"}


def reading(
    measured: datetime,
    value: float = 70.0,
    *,
    received: datetime | None = None,
    participant: str = "P-1",
    device: str = "dev-1",
    metric: str = "heart-rate",
) -> ReadingReceived:
    return ReadingReceived(
        participant_id=participant,
        device_id=device,
        metric=Metric(metric),
        value=value,
        unit=UNIT[metric],
        measured_at=measured,
        occurred_at=received or measured + timedelta(seconds=5),
    )


def batch(*readings: ReadingReceived) -> SummaryBatch:
    """Readings received at the same time are one upload."""
    uploads: dict[datetime, list[ReadingReceived]] = {}
    for r in readings:
        uploads.setdefault(r.occurred_at, []).append(r)
    return SummaryBatch.of(
        [s for received, upload in uploads.items() for s in summarise(upload, "s", received)]
    )


def test_reading_stamped_after_it_was_received_is_a_clock_ahead() -> None:
    flags = clock_skew(batch(reading(T0 + timedelta(minutes=11), received=T0)), RULES)
    assert [(f.kind, f.evidence["direction"]) for f in flags] == [(FlagKind.CLOCK_SKEW, "ahead")]
    assert flags[0].evidence["skew_seconds"] == 660.0
    assert "ahead" in flags[0].reason


def test_small_clock_difference_is_not_a_skew() -> None:
    assert clock_skew(batch(reading(T0 + timedelta(minutes=9), received=T0)), RULES) == []


def test_offline_backlog_whose_newest_reading_is_recent_is_not_a_skew() -> None:
    received = T0
    backlog = [reading(T0 - timedelta(hours=h), received=received) for h in (72, 60, 30, 0.1)]
    assert clock_skew(batch(*backlog), RULES) == []


def test_upload_whose_newest_reading_is_days_old_is_a_clock_behind() -> None:
    upload = [reading(T0 - timedelta(hours=h), received=T0) for h in (80, 50)]
    flags = clock_skew(batch(*upload), RULES)
    assert [f.evidence["direction"] for f in flags] == ["behind"]
    assert flags[0].evidence["lag_hours"] == 50.0
    assert flags[0].dedupe_key == "device-clock-skew:P-1:dev-1:behind"


def test_each_upload_is_judged_on_its_own_newest_reading() -> None:
    old_upload = reading(T0 - timedelta(hours=50), received=T0)
    fresh_upload = reading(T0 + timedelta(seconds=1), received=T0 + timedelta(seconds=2))
    flags = clock_skew(batch(old_upload, fresh_upload), RULES)
    assert [f.evidence["direction"] for f in flags] == ["behind"]


def test_readings_measured_after_withdrawal_raise_one_flag_per_participant() -> None:
    withdrawn = T0
    b = batch(
        reading(T0 - timedelta(minutes=5)),
        reading(T0 + timedelta(minutes=5)),
        reading(T0 + timedelta(minutes=7), device="dev-2"),
        reading(T0 + timedelta(minutes=5), participant="P-2"),
    )
    flags = after_withdrawal(b, {"P-1": withdrawn})
    assert [(f.participant_id, f.kind) for f in flags] == [("P-1", FlagKind.AFTER_WITHDRAWAL)]
    assert flags[0].evidence["readings"] is None  # a summary has each series' ends, no count
    assert flags[0].evidence["device_ids"] == ["dev-1", "dev-2"]
    assert flags[0].evidence["measured_at"] == (T0 + timedelta(minutes=5)).isoformat()


def test_readings_before_withdrawal_raise_nothing() -> None:
    assert after_withdrawal(batch(reading(T0 - timedelta(seconds=1))), {"P-1": T0}) == []


def test_shared_device_flags_every_participant_involved() -> None:
    flags = shared_device("dev-9", ["P-2", "P-1"], T0)
    assert [(f.participant_id, f.dedupe_key) for f in flags] == [
        ("P-1", "shared-device:dev-9:P-1"),
        ("P-2", "shared-device:dev-9:P-2"),
    ]
    assert flags[0].evidence["participants"] == ["P-1", "P-2"]


def test_heart_rate_jump_within_a_minute_is_found_across_batches() -> None:
    b = batch(
        reading(T0, 70),
        reading(T0 + timedelta(seconds=30), 120),  # +50 in 30 s: a jump
        reading(T0 + timedelta(seconds=200), 70),  # -50 but 170 s later: not one
    )
    found = jumps(b, RULES, {})
    assert [(j.delta, j.seconds) for j in found] == [(50.0, 30.0)]
    previous = {("P-1", "dev-1", "heart-rate"): ((T0 - timedelta(seconds=20)).timestamp(), 140.0)}
    assert [j.delta for j in jumps(b, RULES, previous)] == [-70.0, 50.0]


def test_jumps_within_one_upload_come_from_its_steep_changes() -> None:
    upload = [
        reading(T0 + timedelta(seconds=20 * i), v, received=T0 + timedelta(minutes=5))
        for i, v in enumerate([70, 120, 72, 100, 140])  # +50, -48, +28 (under 40), +40
    ]
    assert [j.delta for j in jumps(batch(*upload), RULES, {})] == [50.0, -48.0]


def test_an_older_upload_is_not_compared_with_a_newer_reading() -> None:
    backfill = batch(
        reading(T0, 70),
        reading(T0 + timedelta(seconds=10), 75, received=T0 + timedelta(seconds=15)),
    )
    newer = {("P-1", "dev-1", "heart-rate"): ((T0 + timedelta(hours=1)).timestamp(), 150.0)}
    assert jumps(backfill, RULES, newer) == []


def test_a_jump_rule_looser_than_the_summaries_floor_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        MonitoringSettings(flag_hr_jump_bpm=20)
    assert "flag_hr_jump_bpm" in str(refused.value)
    with pytest.raises(ValidationError, match="multiple of 5"):
        MonitoringSettings(kri_wear_slot_minutes=4)


def test_jumps_are_per_device() -> None:
    b = batch(reading(T0, 70, device="a"), reading(T0 + timedelta(seconds=10), 130, device="b"))
    assert jumps(b, RULES, {}) == []


def test_temperature_change_over_two_degrees_in_five_minutes_is_a_jump() -> None:
    b = batch(
        reading(T0, 36.6, metric="body-temperature"),
        reading(T0 + timedelta(minutes=4), 39.0, metric="body-temperature"),
        reading(T0 + timedelta(minutes=30), 37.0, metric="body-temperature"),
    )
    assert [(j.metric, round(j.delta, 1)) for j in jumps(b, RULES, {})] == [
        ("body-temperature", 2.4)
    ]


def test_diary_reporting_no_activity_on_a_day_of_many_steps_contradicts() -> None:
    flag = epro_contradicts_wearable("P-1", "2026-03-02", 0.0, 8200.0, RULES, "r-1", T0)
    assert flag is not None
    assert flag.dedupe_key == "epro-contradicts-wearable:P-1:2026-03-02"
    assert "8200 steps" in flag.reason


def test_diary_with_activity_or_few_steps_is_consistent() -> None:
    assert epro_contradicts_wearable("P-1", "2026-03-02", 2.0, 9000.0, RULES, "r", T0) is None
    assert epro_contradicts_wearable("P-1", "2026-03-02", 0.0, 300.0, RULES, "r", T0) is None


def test_wear_slots_are_distinct_per_participant() -> None:
    b = batch(
        reading(T0),
        reading(T0 + timedelta(minutes=3)),
        reading(T0 + timedelta(minutes=16)),
        reading(T0, participant="P-2"),
    )
    people, starts = slots(b, 900)
    assert list(zip(people, starts, strict=True)) == [
        ("P-1", T0),
        ("P-1", T0 + timedelta(minutes=15)),
        ("P-2", T0),
    ]

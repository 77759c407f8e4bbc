"""Ingest's per-upload summaries of readings (decision 0092): what retention reads instead
of every reading, so they must say exactly which hours had data and when the last came."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

from helpers import reading
from trialstream.events.readings import ReadingReceived
from trialstream.reading_summaries import summarise

T0 = datetime(2026, 11, 4, 7, 58, 30, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)


def received(participant: str, at: datetime, device: str = "w-1") -> ReadingReceived:
    return ReadingReceived.model_validate(
        {**reading(participant, device, measured_at=at), "event_id": uuid4()}
    )


def test_one_summary_per_participant_with_its_hours_span_and_devices() -> None:
    batch = [
        received("P-1", T0 + timedelta(minutes=3)),  # 08:01:30
        received("P-2", T0),
        received("P-1", T0),  # 07:58:30, earlier than the first seen
        received("P-1", T0 + timedelta(minutes=65), device="strap-9"),  # 09:03:30
    ]
    p1, p2 = summarise(batch, "CARDIO-HF", RECEIVED)
    assert (p1.participant_id, p2.participant_id) == ("P-1", "P-2")
    assert (p1.readings, p2.readings) == (3, 1)
    assert p1.first_measured_at == T0
    assert p1.last_measured_at == T0 + timedelta(minutes=65)
    hour = T0.replace(minute=0, second=0)
    assert p1.hours == [hour, hour + timedelta(hours=1), hour + timedelta(hours=2)]
    assert p1.devices == ["strap-9", "w-1"]
    assert (p1.study_id, p1.occurred_at) == ("CARDIO-HF", RECEIVED)


def test_hours_are_utc_hours_whatever_offset_the_device_reported() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    at = datetime(2026, 11, 4, 13, 45, tzinfo=india)  # 08:15 UTC
    [summary] = summarise([received("P-1", at)], "s", RECEIVED)
    assert summary.hours == [datetime(2026, 11, 4, 8, 0, tzinfo=UTC)]
    assert summary.last_measured_at == at


def test_the_same_readings_give_the_same_summary_id_in_any_order_and_others_another() -> None:
    batch = [received("P-1", T0 + timedelta(seconds=i)) for i in range(5)]
    [a] = summarise(batch, "s", RECEIVED)
    [b] = summarise(list(reversed(batch)), "s", RECEIVED + timedelta(seconds=3))
    [c] = summarise(batch[:4], "s", RECEIVED)
    assert a.event_id == b.event_id  # a retried upload: consumers may drop the repeat
    assert c.event_id != a.event_id


def test_nothing_new_gives_no_summary() -> None:
    assert summarise([], "s", RECEIVED) == []


def measured(
    participant: str, at: datetime, value: float, metric: str = "heart-rate", device: str = "w-1"
) -> ReadingReceived:
    unit = {"heart-rate": "beats/min", "body-temperature": "C", "step-count": "steps"}[metric]
    return ReadingReceived.model_validate(
        {
            **reading(participant, device, metric, value, unit, measured_at=at),
            "event_id": uuid4(),
        }
    )


def test_rollups_fold_each_metric_into_5_minute_utc_buckets_across_devices() -> None:
    start = datetime(2026, 11, 4, 8, 3, tzinfo=UTC)
    batch = [
        measured("P-1", start, 60),
        measured("P-1", start + timedelta(minutes=1), 80, device="strap-9"),  # same bucket
        measured("P-1", start + timedelta(minutes=2), 70),  # 08:05: the next bucket
        measured("P-1", start, 120, metric="step-count"),
    ]
    [summary] = summarise(batch, "s", RECEIVED)
    r = summary.rollups
    rollups = list(
        zip(r.metric, [b.minute for b in r.bucket], r.n, r.sum, r.min, r.max, strict=True)
    )
    assert rollups == [
        ("heart-rate", 0, 2, 140.0, 60.0, 80.0),
        ("heart-rate", 5, 1, 70.0, 70.0, 70.0),
        ("step-count", 0, 1, 120.0, 120.0, 120.0),
    ]


def test_series_keep_each_devices_ends_and_the_steep_changes_between_its_readings() -> None:
    start = datetime(2026, 11, 4, 8, 0, tzinfo=UTC)
    hr = [70, 72, 130, 71, 75]  # +58 then -59 within 30 s: steep; +4 is not
    batch = [measured("P-1", start + timedelta(seconds=30 * i), v) for i, v in enumerate(hr)]
    batch.append(measured("P-1", start + timedelta(seconds=600), 140))  # +65, but 8.5 min on
    batch.append(measured("P-1", start, 36.6, "body-temperature", "patch-2"))
    batch.append(
        measured("P-1", start + timedelta(minutes=10), 38.1, "body-temperature", "patch-2")
    )
    [summary] = summarise(list(reversed(batch)), "s", RECEIVED)  # any order in
    temperature, heart = sorted(summary.series, key=lambda s: s.metric)
    assert (heart.device_id, heart.first_value, heart.last_value) == ("w-1", 70, 140)
    assert (heart.first_at, heart.last_at) == (start, start + timedelta(seconds=600))
    assert [(s.delta, s.seconds) for s in heart.steep] == [(58, 30), (-59, 30)]
    assert heart.steep[0].at == start + timedelta(seconds=60)
    assert temperature.device_id == "patch-2"
    assert [round(s.delta, 1) for s in temperature.steep] == [1.5]  # 1.0 C floor, 15 min

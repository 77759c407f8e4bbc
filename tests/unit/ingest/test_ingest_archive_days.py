"""Which archive partitions (UTC measured days, decision 0074) a batch and the maintenance
loop need."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

from ingest.domain import days_to_prepare, detach_cutoff, measured_days
from trialstream.validation import ReadingUpload, parse_upload

TOKYO = timezone(timedelta(hours=9))
NEW_YORK = timezone(timedelta(hours=-5))


def measured(when: datetime) -> ReadingUpload:
    return parse_upload(
        {
            "event_id": str(uuid.uuid4()),
            "participant_id": "P-1",
            "device_id": "w-1",
            "metric": "heart-rate",
            "value": 70,
            "unit": "beats/min",
            "measured_at": when.isoformat(),
        }
    )


def test_a_batch_needs_the_utc_days_its_readings_were_measured_on() -> None:
    batch = [
        measured(datetime(2026, 3, 1, 8, 0, tzinfo=TOKYO)),  # 23:00 UTC the day before
        measured(datetime(2026, 3, 1, 20, 0, tzinfo=NEW_YORK)),  # 01:00 UTC the day after
        measured(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
        measured(datetime(2026, 3, 1, 13, 0, tzinfo=UTC)),
    ]
    assert measured_days(batch) == {date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)}


def test_maintenance_prepares_yesterday_today_and_the_days_ahead_in_utc() -> None:
    late_evening_in_new_york = datetime(2026, 12, 31, 22, 0, tzinfo=NEW_YORK)  # Jan 1 in UTC
    assert days_to_prepare(late_evening_in_new_york, 2) == [
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 1, 2),
        date(2027, 1, 3),
    ]


def test_detaching_keeps_the_day_that_many_days_ago() -> None:
    assert detach_cutoff(datetime(2026, 3, 10, 0, 5, tzinfo=UTC), 7) == date(2026, 3, 3)

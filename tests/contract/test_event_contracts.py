"""Invariants of the event contracts every service relies on."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest
import trialstream.events as events
from pydantic import ValidationError
from trialstream.events import UNITS, Event, Metric, ReadingReceived, Topic


def event_classes() -> list[type[Event]]:
    return [
        c
        for _, c in inspect.getmembers(events, inspect.isclass)
        if issubclass(c, Event) and c is not Event
    ]


@pytest.mark.parametrize("cls", event_classes(), ids=lambda c: c.__name__)
def test_every_event_is_frozen_versioned_and_tolerant(cls: type[Event]) -> None:
    assert cls.model_config.get("frozen") is True
    assert cls.model_config.get("extra") == "ignore"
    assert cls.model_fields["schema_version"].default == 1


def test_every_metric_has_exactly_one_open_mhealth_unit() -> None:
    assert set(UNITS) == set(Metric)
    assert UNITS[Metric.HEART_RATE] == "beats/min"
    assert UNITS[Metric.BODY_TEMPERATURE] == "C"


def test_topic_names_are_versioned_and_unique() -> None:
    names = [str(t) for t in Topic]
    assert len(names) == len(set(names))
    assert all(
        name.startswith("trialstream.") and name.rsplit(".", 1)[-1].startswith("v")
        for name in names
    )


def test_reading_requires_timezone_aware_times() -> None:
    with pytest.raises(ValidationError):
        ReadingReceived(
            participant_id="P-1x",
            device_id="d",
            metric=Metric.HEART_RATE,
            value=1,
            unit="beats/min",
            measured_at=datetime(2026, 1, 1),
        )


def test_reading_rejects_identifying_participant_ids() -> None:
    for bad in ("jane@example.org", "+44 20 7946 0958", "Jane Doe", "5551234567"):
        with pytest.raises(ValidationError):
            ReadingReceived(
                participant_id=bad,
                device_id="d",
                metric=Metric.HEART_RATE,
                value=1,
                unit="beats/min",
                measured_at=datetime(2026, 1, 1, tzinfo=UTC),
            )


def test_consumers_ignore_unknown_fields_from_newer_producers() -> None:
    reading = ReadingReceived(
        participant_id="P-1x",
        device_id="d",
        metric=Metric.HEART_RATE,
        value=1,
        unit="beats/min",
        measured_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    newer = reading.model_dump() | {"added_in_a_later_minor_version": 42}
    assert ReadingReceived.model_validate(newer) == reading

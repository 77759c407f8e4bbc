"""The protocol and booking policy come from TELEHEALTH_* settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from telehealth.domain.windows import DEFAULT_PROTOCOL
from telehealth.settings import TelehealthSettings
from trialstream.events.visits import VisitType


def test_default_protocol_is_day_1_7_and_28(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEHEALTH_PROTOCOL", raising=False)
    assert TelehealthSettings().protocol == list(DEFAULT_PROTOCOL)


def test_protocol_is_read_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TELEHEALTH_PROTOCOL",
        '[{"name": "Screening", "day": 1}, {"name": "Week 2", "day": 14, "minus_days": 3, "plus_days": 3, "type": "home"}]',
    )
    monkeypatch.setenv("TELEHEALTH_SLOT_MINUTES", "45")
    settings = TelehealthSettings()
    assert [(v.name, v.day, v.type) for v in settings.protocol] == [
        ("Screening", 1, VisitType.VIDEO),
        ("Week 2", 14, VisitType.HOME),
    ]
    assert settings.slot_minutes == 45


def test_invalid_protocol_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEHEALTH_PROTOCOL", '[{"name": "Day 0", "day": 0}]')
    with pytest.raises(ValidationError, match="day"):
        TelehealthSettings()

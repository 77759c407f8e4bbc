"""KRI values, statuses and breach episodes, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from monitoring.rbm.kri import (
    KriConfig,
    KriInputs,
    ParticipantFacts,
    Threshold,
    participant_inputs,
    present,
    transition,
    wear_time,
)
from monitoring.settings import MonitoringSettings

CFG = MonitoringSettings().kri_config()
# Monday 2026-03-02 22:00 UTC = 23:00 in Berlin: the last 7 local days are complete.
NOW = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)


def facts(**changes: object) -> ParticipantFacts:
    base: dict[str, object] = {
        "participant_id": "P-1",
        "site_id": "s1",
        "timezone": "Europe/Berlin",
        "enrolled_at": NOW - timedelta(days=30),
    }
    base.update(changes)
    return ParticipantFacts(**base)  # type: ignore[arg-type]


def slots_between(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(minutes=15)
    return out


def test_wear_time_counts_waking_slots_in_local_time() -> None:
    # 7 local days x 15 waking hours x 4 slots; worn 07:00-22:00 Berlin (06:00-21:00 UTC) daily
    worn = [
        s
        for d in range(7)
        for s in slots_between(
            datetime(2026, 2, 24, 6, tzinfo=UTC) + timedelta(days=d),
            datetime(2026, 2, 24, 21, tzinfo=UTC) + timedelta(days=d),
        )
    ]
    ratio = wear_time(facts(wear_slots=worn), NOW, CFG)
    assert ratio.den == 7 * 15 * 4
    assert ratio.percent() == 100.0


def test_night_time_data_does_not_count_as_waking_wear() -> None:
    night = slots_between(datetime(2026, 3, 1, 23, tzinfo=UTC), datetime(2026, 3, 2, 4, tzinfo=UTC))
    assert wear_time(facts(wear_slots=night), NOW, CFG).num == 0


def test_wear_time_window_starts_at_enrolment_and_ends_at_withdrawal() -> None:
    enrolled = datetime(2026, 3, 2, 8, tzinfo=UTC)  # 09:00 Berlin
    withdrawn = datetime(2026, 3, 2, 10, tzinfo=UTC)  # 11:00 Berlin
    half = slots_between(enrolled, enrolled + timedelta(hours=1))
    cfg = KriConfig(thresholds=CFG.thresholds, min_wear_hours=0)
    ratio = wear_time(
        facts(enrolled_at=enrolled, withdrawn_at=withdrawn, wear_slots=half), NOW, cfg
    )
    assert (ratio.num, ratio.den) == (4, 8)


def test_wear_time_is_unknown_until_enough_waking_time_was_observed() -> None:
    enrolled = datetime(2026, 3, 2, 17, tzinfo=UTC)  # 18:00 Berlin: 4 waking hours left today
    assert wear_time(facts(enrolled_at=enrolled), NOW, CFG).percent() == 0.0
    later = enrolled + timedelta(minutes=15)
    assert wear_time(facts(enrolled_at=later), NOW, CFG).percent() is None


def test_wear_time_over_a_dst_change_uses_the_real_day_length() -> None:
    cfg = KriConfig(thresholds=CFG.thresholds, sleep_hour=24, wake_hour=0, window_days=1)
    assert cfg.min_wear_hours == 4.0
    # Berlin springs forward on 2026-03-29: that local day has 23 hours
    now = datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # 2026-03-30 00:00 local
    ratio = wear_time(facts(enrolled_at=now - timedelta(days=60)), now, cfg)
    assert ratio.den == 24 * 4  # the window is exactly 24 real hours


def test_participant_without_data_has_unknown_not_zero_ratios() -> None:
    values = participant_inputs(facts(), NOW, CFG).values()
    assert values["epro_on_time"] is None
    assert values["visit_window"] is None
    assert values["ack_median"] is None
    assert values["wear_time"] == 0.0
    assert values["dq_flag_rate"] == 0.0


def test_site_values_pool_participants_rather_than_average_them() -> None:
    site = KriInputs()
    site.add(participant_inputs(facts(epro_on_time=1, epro_due=2), NOW, CFG))
    site.add(participant_inputs(facts(epro_on_time=27, epro_due=28), NOW, CFG))
    assert site.values()["epro_on_time"] == pytest.approx(93.33)


def test_median_time_to_acknowledge_and_flag_rate() -> None:
    values = participant_inputs(
        facts(ack_minutes=[5.0, 90.0, 20.0], dq_events=14), NOW, CFG
    ).values()
    assert values["ack_median"] == 20.0
    assert values["dq_flag_rate"] == 2.0  # 14 events over the 7-day window


@pytest.mark.parametrize(
    ("value", "status"),
    [(None, "unknown"), (95.0, "green"), (80.0, "green"), (79.9, "amber"), (59.0, "red")],
)
def test_status_below_direction(value: float | None, status: str) -> None:
    assert Threshold(80, 60, "below").status(value) == status


@pytest.mark.parametrize(("value", "status"), [(10.0, "green"), (45.0, "amber"), (61.0, "red")])
def test_status_above_direction(value: float, status: str) -> None:
    assert Threshold(30, 60, "above").status(value) == status


def test_breach_episode_opens_once_and_closes_only_on_green() -> None:
    open_, events = False, []
    for status in ["green", "amber", "red", "red", "amber", "red", "unknown", "green", "red"]:
        change = transition(open_, status)  # type: ignore[arg-type]
        if change:
            events.append((status, change))
            open_ = change == "breach"
    assert events == [("red", "breach"), ("green", "recover"), ("red", "breach")]


def test_presented_kris_have_the_dashboard_shape() -> None:
    shown = present({"wear_time": 50.0}, CFG)
    assert [k["name"] for k in shown] == [
        "wear_time",
        "epro_on_time",
        "visit_window",
        "ack_median",
        "dq_flag_rate",
    ]
    assert shown[0] == {
        "name": "wear_time",
        "label": "Wear-time compliance (waking hours with data)",
        "value": 50.0,
        "unit": "%",
        "threshold": {"amber": 80.0, "red": 60.0, "direction": "below", "source": "settings"},
        "status": "red",
    }
    assert shown[1]["status"] == "unknown"


def test_thresholds_that_invert_the_direction_are_refused() -> None:
    with pytest.raises(ValueError, match="red must be worse than amber"):
        MonitoringSettings(kri_wear_time_red=90.0)

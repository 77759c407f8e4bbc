"""The portfolio's early-warning lights from the latest snapshots (decision 0090): each
light judged, 'unknown' with the time it went stale, or with no snapshot at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from intelligence.api.pages import TEMPLATES
from intelligence.domain.lights import LIGHTS, Limits, site_lights, study_lights, worst
from intelligence.early_warning import CSV_COLUMNS, csv_cells

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LIMITS = Limits(
    kri_stale_after=timedelta(minutes=15),
    risk_stale_after=timedelta(hours=3),
    alert_load_amber=0.5,
    alert_load_red=1.0,
    high_risk_amber=20.0,
    high_risk_red=35.0,
)


def kri(name: str, value: float | None, status: str, amber: float, red: float) -> dict[str, Any]:
    direction = "above" if name == "ack_median" else "below"
    return {
        "kri": name, "label": name, "value": value, "unit": "%", "status": status,
        "threshold": {"amber": amber, "red": red, "direction": direction},
    }  # fmt: skip


def snapshot(alerts: int, days: float, open_alerts: int = 2) -> dict[str, Any]:
    return {
        "kris": [
            kri("wear_time", 70.0, "amber", 80.0, 60.0),
            kri("ack_median", 75.0, "red", 30.0, 60.0),
            kri("epro_on_time", None, "unknown", 80.0, 60.0),
        ],
        "open_alerts": open_alerts,
        "open_flags": 1,
        "alerts_in_window": alerts,
        "participant_days": days,
    }


def summary(share: float) -> dict[str, Any]:
    return {
        "participants_scored": 10, "high_risk": round(10 * share), "high_risk_cutoff": 0.3,
        "high_risk_share": share, "mean_risk": 0.21, "model_version": "m1",
    }  # fmt: skip


def test_fresh_snapshots_light_each_kri_with_its_value_and_threshold() -> None:
    at = (NOW - timedelta(minutes=1), NOW - timedelta(hours=1))
    lights = site_lights(snapshot(alerts=7, days=10), summary(0.4), at, NOW, LIMITS)
    assert list(lights) == list(LIGHTS)
    dc = lights["data_completeness"]
    assert (dc["status"], dc["value"], dc["threshold"]["red"], dc["stale"]) == (
        "amber", 70.0, 60.0, False,
    )  # fmt: skip
    assert dc["as_of"] == at[0].isoformat()
    assert lights["time_to_acknowledge"]["status"] == "red"
    load = lights["alert_load"]
    assert (load["status"], load["value"]) == ("amber", 0.7)  # 7 alerts in 10 participant-days
    assert (load["open_alerts"], load["open_flags"]) == (2, 1)
    risk = lights["retention_risk"]
    assert (risk["status"], risk["value"], risk["participants_scored"]) == ("red", 40.0, 10)


@pytest.mark.parametrize(
    ("alerts", "days", "status"),
    [(5, 10, "green"), (6, 10, "amber"), (10, 10, "amber"), (11, 10, "red")],
)
def test_alert_load_is_judged_by_the_settings_limits(alerts: int, days: float, status: str) -> None:
    lights = site_lights(snapshot(alerts, days), None, (NOW, None), NOW, LIMITS)
    assert lights["alert_load"]["status"] == status


def test_no_participant_day_is_an_unknown_alert_load_with_its_open_alerts() -> None:
    lights = site_lights(snapshot(0, 0.0, open_alerts=4), None, (NOW, None), NOW, LIMITS)
    assert (lights["alert_load"]["status"], lights["alert_load"]["value"]) == ("unknown", None)
    assert lights["alert_load"]["open_alerts"] == 4


def test_a_stale_snapshot_is_unknown_and_says_since_when() -> None:
    old = NOW - timedelta(minutes=40)
    lights = site_lights(snapshot(7, 10), summary(0.0), (old, NOW), NOW, LIMITS)
    for name in ("data_completeness", "alert_load", "time_to_acknowledge"):
        w = lights[name]
        assert (w["status"], w["stale"], w["reason"]) == ("unknown", True, "stale")
        assert w["stale_since"] == (old + timedelta(minutes=15)).isoformat()
        assert w["as_of"] == old.isoformat()
    assert lights["data_completeness"]["value"] == 70.0  # the last value stays readable
    assert (lights["retention_risk"]["status"], lights["retention_risk"]["stale"]) == (
        "green", False,
    )  # fmt: skip


def test_no_snapshot_at_all_is_unknown_with_no_time() -> None:
    lights = site_lights(None, None, (None, None), NOW, LIMITS)
    for w in lights.values():
        assert (w["status"], w["as_of"], w["stale"], w["value"]) == ("unknown", None, False, None)
    assert lights["retention_risk"]["reason"] == "no summary from retention"


def test_the_study_takes_each_lights_worst_known_site() -> None:
    red = site_lights(snapshot(11, 10), summary(0.1), (NOW, NOW), NOW, LIMITS)
    none = site_lights(None, None, (None, None), NOW, LIMITS)
    made = study_lights([{"early_warning": red}, {"early_warning": none}, {}])
    assert made == {
        "data_completeness": "amber", "alert_load": "red", "time_to_acknowledge": "red",
        "retention_risk": "green",
    }  # fmt: skip
    assert study_lights([{"early_warning": none}])["alert_load"] == "unknown"
    assert worst([]) == "unknown"


def test_csv_cells_line_up_with_the_columns() -> None:
    lights = site_lights(snapshot(7, 10), summary(0.4), (NOW, NOW), NOW, LIMITS)
    cells = dict(zip(CSV_COLUMNS, csv_cells({"early_warning": lights}), strict=True))
    assert cells["data_completeness"] == "amber"
    assert cells["wear_time_pct"] == 70.0
    assert (cells["alert_load"], cells["alerts_per_participant_day"]) == ("amber", 0.7)
    assert (cells["open_alerts"], cells["open_flags"]) == (2, 1)
    assert (cells["retention_risk"], cells["high_risk_pct"]) == ("red", 40.0)
    assert cells["kris_as_of"] == NOW.isoformat()
    study = study_lights([{"early_warning": lights}])
    row = dict(zip(CSV_COLUMNS, csv_cells({"early_warning": study}), strict=True))
    assert (row["alert_load"], row["retention_risk"], row["open_alerts"]) == ("amber", "red", "")
    assert csv_cells({}) == [""] * len(CSV_COLUMNS)


def test_the_page_says_since_when_a_light_is_stale() -> None:
    old = NOW - timedelta(minutes=40)
    lights = site_lights(snapshot(7, 10), None, (old, None), NOW, LIMITS)
    macros = TEMPLATES.env.get_template("_lights.html").module
    cell = str(macros.light_cell("data_completeness", lights["data_completeness"]))  # type: ignore[attr-defined]
    assert 'data-status="unknown"' in cell
    assert "stale since 2026-12-04 11:35" in cell  # 11:20 + 15 min
    row = str(macros.light_row("retention_risk", lights["retention_risk"]))  # type: ignore[attr-defined]
    assert "no snapshot yet" in row
    row = str(macros.light_row("alert_load", lights["alert_load"]))  # type: ignore[attr-defined]
    assert "2 open alerts, 1 open flags" in row
    assert "(last 2026-12-04 11:20)" in row

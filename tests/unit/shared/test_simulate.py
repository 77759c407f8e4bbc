"""The simulated fleet produces valid readings and the scripted episodes it promises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trialstream.simulate import FleetConfig, build_fleet
from trialstream.validation import normalise, parse_upload

CONFIG = FleetConfig(
    participants=12,
    sites=2,
    speed=60,
    backfill_minutes=90,
    duration_seconds=0,
    ingest_url="",
    monitoring_url="",
    identity_url="",
    admin_token="x",
)


def test_every_simulated_reading_passes_ingest_validation() -> None:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for participant in build_fleet(CONFIG, "run1"):
        for minute in range(0, 180, 7):
            for raw in participant.minute(start + timedelta(minutes=minute), minute):
                normalise(
                    parse_upload(raw),
                    received_at=start + timedelta(days=1),
                    max_clock_skew=timedelta(0),
                )


def test_fleet_spreads_participants_over_sites_and_scenarios() -> None:
    fleet = build_fleet(CONFIG, "run1")
    assert {p.site_id for p in fleet} == {"site-a", "site-b"}
    assert {p.scenario for p in fleet} == {
        "normal",
        "exercise",
        "tachycardia",
        "desaturation",
        "fever",
        "artefacts",
    }
    assert all(p.participant_id.startswith("P-") for p in fleet)


def test_tachycardia_scenario_is_fast_at_rest_within_its_window() -> None:
    patient = next(p for p in build_fleet(CONFIG, "run1") if p.scenario == "tachycardia")
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    readings = patient.minute(start + timedelta(minutes=15), 15)
    by_metric = {r["metric"]: r["value"] for r in readings}
    assert by_metric["heart-rate"] >= 125
    assert by_metric["step-count"] == 0

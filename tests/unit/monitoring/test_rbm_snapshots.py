"""Each (study, site)'s snapshot after an evaluation: pooled values judged by the study's
thresholds, participants counted, open work attached, keyed '<study>|<site>'."""

from __future__ import annotations

from datetime import UTC, datetime

from monitoring.rbm.kri import KriInputs, Ratio
from monitoring.rbm.snapshots import snapshots
from monitoring.settings import MonitoringSettings

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def inputs(worn: float, slots: float, acks: list[float], days: float) -> KriInputs:
    return KriInputs(wear=Ratio(worn, slots), ack_minutes=acks, dq=Ratio(0, days))


def test_a_site_pools_its_participants_and_carries_its_open_work() -> None:
    cfg = MonitoringSettings().kri_config()
    one, two = inputs(30, 100, [10.0, 50.0], 7), inputs(10, 100, [90.0], 7)
    site = KriInputs()
    site.add(one)
    site.add(two)
    people = {"P-1": ("S1", "a", one), "P-2": ("S1", "a", two)}
    made = snapshots({("S1", "a"): site}, people, {"S1": cfg}, {("S1", "a"): (3, 2)}, NOW)

    [(key, snap)] = made
    assert key == "S1|a"
    assert (snap.study_id, snap.site_id, snap.evaluated_at) == ("S1", "a", NOW)
    assert (snap.participants, snap.open_alerts, snap.open_flags) == (2, 3, 2)
    assert (snap.alerts_in_window, snap.participant_days) == (3, 14.0)
    kris = {k.kri: k for k in snap.kris}
    assert list(kris) == ["wear_time", "epro_on_time", "visit_window", "ack_median", "dq_flag_rate"]
    assert kris["wear_time"].value == 20.0  # 40 of 200 slots, not the mean of 30 % and 10 %
    assert kris["wear_time"].status == cfg.thresholds["wear_time"].status(20.0) == "red"
    assert kris["ack_median"].value == 50.0
    assert kris["ack_median"].threshold.red == cfg.thresholds["ack_median"].red
    assert kris["epro_on_time"].status == "unknown"  # nothing due: no value
    assert "P-1" not in snap.model_dump_json()  # aggregates only


def test_only_evaluated_studies_get_a_snapshot_and_no_work_is_zero() -> None:
    cfg = MonitoringSettings().kri_config()
    sites = {("S1", "b"): inputs(1, 2, [], 1), ("OFF", "b"): inputs(1, 2, [], 1)}
    people = {"P-3": ("S1", "b", sites[("S1", "b")]), "P-4": ("OFF", "b", sites[("OFF", "b")])}
    made = snapshots(sites, people, {"S1": cfg}, {}, NOW)
    assert [k for k, _ in made] == ["S1|b"]
    snap = made[0][1]
    assert (snap.participants, snap.open_alerts, snap.open_flags) == (1, 0, 0)

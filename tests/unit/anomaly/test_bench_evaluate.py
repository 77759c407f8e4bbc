"""The anomaly benchmark's yardstick: event matching arithmetic, generator invariants,
and the two reference baselines, on tiny hand-made or small seeded inputs."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import Metric
from trialstream.validation import normalise, parse_upload

from benchmarks.anomaly.baselines import persistence_alerts, threshold_alerts
from benchmarks.anomaly.evaluate import evaluate
from benchmarks.anomaly.generate import (
    METRICS,
    Dataset,
    GeneratorConfig,
    Participant,
    generate,
)
from benchmarks.anomaly.jsonl import write_readings
from benchmarks.anomaly.labels import MIX_ONLY_KINDS, EventKind, Label, LabelSet
from benchmarks.anomaly.physiology import Profile

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def alert(
    minute: float,
    metric: Metric | None = Metric.HEART_RATE,
    kind: AlertKind = AlertKind.CLINICAL,
    pid: str = "P-0001",
) -> AlertRaised:
    return AlertRaised(
        participant_id=pid,
        kind=kind,
        metric=metric,
        severity=Severity.HIGH,
        rule=f"test/{kind}/{metric}",
        detected_at=at(minute),
        window_start=at(minute - 5),
        window_end=at(minute),
        observed=[1.0],
        model_version="test",
        explanation="test",
    )


def labels(*events: Label, participants: int = 2, days: int = 1) -> LabelSet:
    return LabelSet(seed=0, participants=participants, days=days, labels=events)


TACHY = Label("P-0001", EventKind.TACHYCARDIA_AT_REST, at(0), at(60))
DROPOUT = Label("P-0001", EventKind.DROPOUT, at(300), at(420))


def test_clinical_alert_on_the_events_metric_inside_the_window_detects_it() -> None:
    result = evaluate([alert(7)], labels(TACHY))
    tachy = result.per_kind[0]
    assert (tachy.kind, tachy.events, tachy.detected) == (TACHY.kind, 1, 1)
    assert tachy.median_latency_min == pytest.approx(7)
    assert result.clinical_recall == 1.0
    assert result.precision == 1.0


def test_alert_of_the_wrong_family_or_participant_does_not_detect() -> None:
    wrong = [
        alert(5, None, AlertKind.DEVICE_QUALITY),  # device alert during a clinical event
        alert(6, Metric.HEART_RATE, pid="P-0002"),  # someone else
        alert(310),  # clinical alert during a dropout
    ]
    result = evaluate(wrong, labels(TACHY, DROPOUT))
    assert result.clinical_recall == 0.0
    assert result.device_recall == 0.0
    assert result.true_alerts == 0
    assert result.median_latency_min is None


def test_clinical_alert_about_another_metric_is_true_but_does_not_detect() -> None:
    result = evaluate([alert(10, Metric.RESPIRATORY_RATE)], labels(TACHY))
    assert result.clinical_recall == 0.0
    assert result.precision == 1.0


def test_device_event_is_detected_by_any_device_quality_alert() -> None:
    result = evaluate([alert(330, None, AlertKind.DEVICE_QUALITY)], labels(DROPOUT))
    assert result.device_recall == 1.0
    (dropout,) = [r for r in result.per_kind if r.kind is EventKind.DROPOUT]
    assert dropout.median_latency_min == pytest.approx(30)


def test_window_ends_thirty_minutes_after_the_event_inclusive() -> None:
    on_edge = evaluate([alert(90)], labels(TACHY))
    late = evaluate([alert(90.5)], labels(TACHY))
    early = evaluate([alert(-0.5)], labels(TACHY))
    assert (on_edge.clinical_recall, on_edge.false_alerts) == (1.0, 0)
    assert (late.clinical_recall, late.false_alerts) == (0.0, 1)
    assert (early.clinical_recall, early.false_alerts) == (0.0, 1)


def test_precision_recall_and_false_alert_rate_arithmetic() -> None:
    brady = Label("P-0002", EventKind.BRADYCARDIA, at(100), at(130))
    alerts = [alert(2), alert(20), alert(200), alert(400, pid="P-0002"), alert(-50)]
    result = evaluate(alerts, labels(TACHY, brady, participants=2, days=2))
    assert result.clinical_recall == 0.5
    assert result.alerts == 5
    assert result.true_alerts == 2
    assert result.precision == pytest.approx(0.4)
    assert result.false_alerts_per_participant_day == pytest.approx(3 / 4)
    assert result.median_latency_min == pytest.approx(2)
    assert dict(result.false_by_rule) == {"test/clinical/heart-rate": 3}


def test_epro_alerts_are_not_scored() -> None:
    result = evaluate([alert(500, None, AlertKind.EPRO_SAFETY)], labels(TACHY))
    assert result.alerts == 0
    assert result.precision is None


# --- generator ---------------------------------------------------------------------------

SMALL = GeneratorConfig(participants=8, days=2, seed=11)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Path]:
    data = generate(SMALL)
    path = tmp_path_factory.mktemp("bench") / "readings.jsonl"
    write_readings(data, path)
    return data, path


Row = tuple[str, Metric, float, datetime]


@pytest.fixture(scope="module")
def rows(small: tuple[Dataset, Path]) -> list[Row]:
    """Every line, through the same validation ingest and replay apply."""
    out = []
    for line in small[1].read_text(encoding="utf-8").splitlines():
        upload = parse_upload(json.loads(line))
        r = normalise(upload, received_at=upload.measured_at, max_clock_skew=timedelta(0))
        out.append((r.participant_id, r.metric, r.value, r.measured_at))
    return out


def test_generated_lines_are_valid_readings_in_time_order(
    small: tuple[Dataset, Path], rows: list[Row]
) -> None:
    data, _ = small
    assert len(rows) == len(data.t_us)
    times = [t for *_, t in rows]
    assert times == sorted(times)
    assert {m for _, m, _, _ in rows} == set(Metric)
    assert all(v == int(v) for _, m, v, _ in rows if m is Metric.STEP_COUNT)


def test_every_kind_is_labelled_without_overlap(small: tuple[Dataset, Path]) -> None:
    data, _ = small
    assert {lab.kind for lab in data.labels.labels} == set(EventKind) - MIX_ONLY_KINDS
    spans = defaultdict(list)
    for lab in data.labels.labels:
        spans[lab.participant_id].append((lab.start, lab.end))
    for own in spans.values():
        own.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(own))


def test_dropouts_are_silent_and_flatlines_constant(
    small: tuple[Dataset, Path], rows: list[Row]
) -> None:
    data, _ = small
    for lab in data.labels.labels:
        inside = [
            (m, v) for p, m, v, t in rows if p == lab.participant_id and lab.start <= t < lab.end
        ]
        if lab.kind is EventKind.DROPOUT:
            assert inside == []
        elif lab.kind is EventKind.FLATLINE:
            hr = {v for m, v in inside if m is Metric.HEART_RATE}
            assert len(hr) == 1
            assert len([m for m, _ in inside if m is Metric.HEART_RATE]) >= 60


def test_labelled_vitals_stay_in_their_ranges(small: tuple[Dataset, Path], rows: list[Row]) -> None:
    data, _ = small
    expected = {
        EventKind.TACHYCARDIA_AT_REST: (Metric.HEART_RATE, 120, 150),
        EventKind.BRADYCARDIA: (Metric.HEART_RATE, 32, 38),
        EventKind.DESATURATION: (Metric.OXYGEN_SATURATION, 86, 91),
        EventKind.FEVER: (Metric.BODY_TEMPERATURE, 38.3, 39.5),
        EventKind.TACHYPNEA: (Metric.RESPIRATORY_RATE, 24, 30),
        EventKind.BASELINE_SHIFT: (Metric.HEART_RATE, 0, 99),
    }
    for lab in data.labels.labels:
        if lab.kind in expected:
            metric, lo, hi = expected[lab.kind]
            values = [
                v
                for p, m, v, t in rows
                if p == lab.participant_id and m is metric and lab.start <= t < lab.end
            ]
            assert values, lab
            assert lo <= min(values) <= max(values) <= hi, lab


def test_the_same_seed_gives_the_same_bytes(small: tuple[Dataset, Path], tmp_path: Path) -> None:
    _, path = small
    again, other = tmp_path / "again.jsonl", tmp_path / "other.jsonl"
    write_readings(generate(SMALL), again)
    write_readings(generate(GeneratorConfig(participants=8, days=2, seed=12)), other)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (path, again, other)]
    assert digest[0] == digest[1] != digest[2]


# --- baselines ---------------------------------------------------------------------------


def hand_made(hr: Sequence[float]) -> Dataset:
    """One participant's heart rate, one reading a minute from T0."""
    profile = Profile(60, 10, 0, 97, 36.7, 14, 0)
    n = len(hr)
    t0 = int(T0.timestamp()) * 1_000_000
    return Dataset(
        config=GeneratorConfig(participants=1, days=1),
        participants=(Participant("P-0001", "W-0001", "Europe/London", 0, profile),),
        labels=labels(participants=1),
        p=np.zeros(n, dtype=np.int64),
        t_us=t0 + np.arange(n, dtype=np.int64) * 60_000_000,
        m=np.full(n, METRICS.index(Metric.HEART_RATE), dtype=np.int64),
        v=np.array(hr, dtype=np.float64),
        offset_min=np.zeros(n, dtype=np.int64),
    )


def test_threshold_baseline_alerts_at_most_once_an_hour_per_metric() -> None:
    data = hand_made([70, 120, 125, 70] + [70] * 56 + [39, 130] + [70] * 10)
    alerts = threshold_alerts(data)
    assert [(a.detected_at - T0) / timedelta(minutes=1) for a in alerts] == [1, 61]
    assert alerts[1].rule == "baseline-threshold/heart-rate-high"


def test_persistence_baseline_fires_on_the_fifth_reading_of_a_run() -> None:
    data = hand_made([70, 120, 120, 120, 120, 70, 120, 120, 120, 120, 120, 120, 39])
    alerts = persistence_alerts(data)
    assert [(a.detected_at - T0) / timedelta(minutes=1) for a in alerts] == [10]
    assert alerts[0].window_start == at(6)


def test_labels_survive_a_json_round_trip(small: tuple[Dataset, Path], tmp_path: Path) -> None:
    data, _ = small
    path = tmp_path / "labels.json"
    data.labels.dump(path)
    assert LabelSet.load(path) == data.labels
    first = json.loads(path.read_text())["events"][0]
    assert set(first) == {"participant_id", "kind", "metric", "start", "end"}


def test_early_deterioration_keeps_each_vital_clear_of_its_limit(
    small: tuple[Dataset, Path], rows: list[Row]
) -> None:
    data, _ = small
    labelled = [lab for lab in data.labels.labels if lab.kind is EventKind.EARLY_DETERIORATION]
    assert labelled
    for lab in labelled:
        inside: dict[Metric, list[float]] = defaultdict(list)
        for p, m, v, t in rows:
            if p == lab.participant_id and lab.start + timedelta(minutes=30) <= t < lab.end:
                inside[m].append(v)
        mean = {m: sum(vs) / len(vs) for m, vs in inside.items()}
        assert mean[Metric.HEART_RATE] < 111, lab
        assert mean[Metric.OXYGEN_SATURATION] > 93, lab
        assert max(inside[Metric.BODY_TEMPERATURE]) < 38.1, lab
        assert mean[Metric.RESPIRATORY_RATE] < 21, lab

"""The issue's goals and markdown tables of evaluations (formatting only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.anomaly.evaluate import Evaluation

GOALS: Mapping[str, str] = {
    "clinical_recall": ">= 0.95",
    "device_recall": ">= 0.9",
    "precision": ">= 0.8",
    "false_alerts_per_participant_day": "<= 0.1",
    "median_latency_min": "<= 10",
    "replay_readings_per_s": ">= 200,000",
    "live_readings_per_s": ">= 50,000",
}
COLUMNS = (
    ("clinical recall", "clinical_recall"),
    ("device recall", "device_recall"),
    ("precision", "precision"),
    ("false alerts / participant-day", "false_alerts_per_participant_day"),
    ("median latency min", "median_latency_min"),
)


def _cell(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def scorer_table(results: Mapping[str, Evaluation]) -> str:
    lines = [
        _row(["scorer", *(title for title, _ in COLUMNS), "alerts"]),
        _row(["---"] * (len(COLUMNS) + 2)),
    ]
    for name, ev in results.items():
        summary = ev.summary()
        cells = [_cell(summary[key], 1 if "latency" in key else 3) for _, key in COLUMNS]
        lines.append(_row([name, *cells, str(ev.alerts)]))
    lines.append(_row(["goal", *(GOALS[key] for _, key in COLUMNS), ""]))
    return "\n".join(lines)


def kind_table(ev: Evaluation, without: Evaluation | None = None) -> str:
    """Per kind; with `without` (the same scorer minus the model) its recall beside."""
    extra = ["recall without the model"] if without is not None else []
    titles = ["kind", "events", "detected", "recall", "median latency min", "p90 latency min"]
    lines = [_row(titles + extra), _row(["---"] * (len(titles) + len(extra)))]
    other = {r.kind: r for r in without.per_kind} if without is not None else {}
    for r in ev.per_kind:
        cells = [
            str(r.kind),
            str(r.events),
            str(r.detected),
            _cell(r.recall),
            _cell(r.median_latency_min, 1),
            _cell(r.p90_latency_min, 1),
        ]
        if without is not None:
            cells.append(_cell(other[r.kind].recall))
        lines.append(_row(cells))
    return "\n".join(lines)


def false_rules(ev: Evaluation, top: int = 8) -> str:
    """The rules behind most false alerts: where precision is lost."""
    per_day = ev.participant_days or 1.0
    return "\n".join(
        f"- {rule}: {count} ({count / per_day:.2f} / participant-day)"
        for rule, count in ev.false_by_rule[:top]
    )


def as_json(ev: Evaluation) -> dict[str, Any]:
    return {
        **ev.summary(),
        "false_by_rule": dict(ev.false_by_rule),
        "per_kind": {
            str(r.kind): {
                "events": r.events,
                "detected": r.detected,
                "recall": r.recall,
                "median_latency_min": r.median_latency_min,
                "p90_latency_min": r.p90_latency_min,
            }
            for r in ev.per_kind
        },
    }

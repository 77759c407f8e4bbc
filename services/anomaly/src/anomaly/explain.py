"""The sentence every alert carries: what was seen, for how long, against which limit."""

from __future__ import annotations

from datetime import UTC, datetime

from anomaly.rules import Limit

NAMES = {
    "heart-rate": "Heart rate",
    "oxygen-saturation": "Oxygen saturation",
    "body-temperature": "Body temperature",
    "respiratory-rate": "Respiratory rate",
}
UNITS = {
    "heart-rate": "beats/min",
    "oxygen-saturation": "%",
    "body-temperature": "C",
    "respiratory-rate": "breaths/min",
}


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def explain(
    limit: Limit,
    band: int,
    values: list[float],
    start: datetime,
    end: datetime,
    steps_in_window: float | None,
    escalated_from: str | None,
) -> str:
    metric = str(limit.metric)
    unit = UNITS[metric]
    low, high = min(values), max(values)
    observed = f"{_num(low)} {unit}" if low == high else f"{_num(low)}-{_num(high)} {unit}"
    minutes = round((end - start).total_seconds() / 60)
    span = f"{start.astimezone(UTC):%Y-%m-%d %H:%M}-{end.astimezone(UTC):%H:%M} UTC"
    context = ""
    if limit.suppressed_by_activity and steps_in_window is not None:
        context = f" at rest ({steps_in_window:.0f} steps in the previous 10 min),"
    side = "at or above" if limit.direction == "high" else "at or below"
    sentence = (
        f"{NAMES[metric]} {observed} over {len(values)} readings in {minutes} min ({span}),"
        f"{context} {side} the limit of {_num(limit.threshold_for(band))} {unit} (NEWS2 band {band})."
    )
    if escalated_from:
        sentence = f"Escalated from {escalated_from}: {sentence}"
    return sentence

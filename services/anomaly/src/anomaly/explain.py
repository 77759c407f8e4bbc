"""What an alert says: its derived identity, its fields, and the sentence it carries (what
was seen, for how long, in what context, against which limit). Deterministic: no clock, no
locale, times in UTC, so replay and live write the same JSON."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import UNITS, Metric

from anomaly.config import SEVERITY_OF_BAND, Direction, Limit
from anomaly.state import Run

# Fixed forever: alert ids are derived from it, and consumers dedupe on them.
ALERT_NAMESPACE = uuid.UUID("5b7f5a2e-9a53-4bd4-8a0c-6f1f2d8a4c11")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

NAMES = {
    Metric.HEART_RATE: "Heart rate",
    Metric.OXYGEN_SATURATION: "Oxygen saturation",
    Metric.BODY_TEMPERATURE: "Body temperature",
    Metric.RESPIRATORY_RATE: "Respiratory rate",
    Metric.STEP_COUNT: "Step count",
}


@dataclass(frozen=True)
class Activity:
    """Step readings known at detection time in the trailing activity window."""

    steps: float
    readings: int
    window_minutes: float
    # Without steps, breathing's rise over the participant's own recent mean (anomaly.exertion;
    # None: not judged, NaN: no breathing known)
    breath_rise: float | None = None
    # Without steps, movement was looked for in heart rate (a fall of at least this many
    # beats/min between readings in the last so many minutes; anomaly.exertion.moved) and
    # not seen (None: not judged)
    motion: tuple[float, float] | None = None


def number(value: float) -> str:
    """142.0 -> '142', 38.65 -> '38.65', 93.333 -> '93.33'."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def span(start: datetime, end: datetime) -> str:
    """Times are UTC already (the scorer builds them from epoch microseconds)."""
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC"


def _context(activity: Activity) -> str:
    window = f"in the previous {number(activity.window_minutes)} min"
    if activity.readings == 0:
        rise, heart = activity.breath_rise, _motion(activity.motion)
        if rise is None:
            if heart:
                return f" with no step data {window}{heart}, so at rest (inferred, not measured)"
            return f" with no step data {window} (activity unknown)"
        if rise != rise:  # NaN
            if heart:
                return (
                    f" with no step data {window} and no recent breathing rate{heart}, so "
                    "at rest (inferred, not measured)"
                )
            return f" with no step data {window} and no recent breathing rate (activity unknown)"
        return (
            f" with no step data {window}; breathing {_signed(rise)} breaths/min against "
            f"their own average of the hours before{heart}, so not exercise (inferred, not "
            "measured)"
        )
    return f" at rest ({number(activity.steps)} steps {window})"


def _motion(motion: tuple[float, float] | None) -> str:
    if motion is None:
        return ""
    fall, minutes = motion
    return (
        f"; heart rate did not fall by {number(fall)} beats/min or more between readings in "
        f"the previous {number(minutes)} min (no sign of movement)"
    )


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + number(abs(round(value, 1)))


def explain(
    limit: Limit,
    band: int,
    values: Sequence[float],
    start: datetime,
    end: datetime,
    activity: Activity | None,
    escalated_from: int = 0,
    after_minutes: float | None = None,
) -> str:
    unit = UNITS[limit.metric]
    low, high = min(values), max(values)
    observed = number(low) if low == high else f"{number(low)}-{number(high)}"
    minutes = round((end - start).total_seconds() / 60)
    context = _context(activity) if limit.suppressed_by_activity and activity else ""
    side = "at or above" if limit.direction is Direction.HIGH else "at or below"
    held = f"for {minutes} min ({span(start, end)}, {len(values)} readings)"
    if len(values) == 1 and after_minutes is not None:  # a rare measurement: episodes._alone
        held = (
            f"in a single reading at {end:%Y-%m-%d %H:%M} UTC (this device measures it only "
            f"now and then: the reading before was {number(round(after_minutes))} min earlier, "
            "so one reading is the evidence it can give)"
        )
    sentence = (
        f"{NAMES[limit.metric]} {observed} {unit} {held}{context}, {side} the limit of "
        f"{number(limit.threshold_for(band))} {unit} (NEWS2 band {band})."
    )
    if escalated_from:
        rise = f"{SEVERITY_OF_BAND[escalated_from]} to {SEVERITY_OF_BAND[band]}"
        sentence = f"Escalated from {rise}: {sentence}"
    return sentence


def to_datetime(us: int) -> datetime:
    """Epoch microseconds to an exact UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


def episode_key(participant_id: str, rule: str, severity: Severity, first_event_id: str) -> str:
    """An episode's alert id key: the same episode (participant, rule, severity, the run's
    first reading) always gets the same id, so a re-scored batch is deduplicated."""
    return f"{participant_id}|{rule}|{severity}|{first_event_id}"


def silence_key(participant_id: str, rule: str, last_us: int) -> str:
    """A silence's alert id key: the reading it followed, whoever noticed it."""
    return f"{participant_id}|{rule}|{last_us}"


def raise_alert(
    *,
    key: str,
    participant_id: str,
    kind: AlertKind,
    metric: Metric | None,
    severity: Severity,
    rule: str,
    start: datetime,
    end: datetime,
    observed: Sequence[float],
    model_version: str,
    explanation: str,
    threshold: float | None = None,
    baseline: float | None = None,
) -> AlertRaised:
    """Every alert the scorer raises is built here. Its id is uuid5 of `key`
    (`episode_key` or `silence_key`); it occurred when it was detected (`end`), not on the
    wall clock, so replay and live write the same JSON. `observed` is the caller's window
    of values (the whole run for limits, its last 30 readings for the other rules)."""
    return AlertRaised(
        event_id=uuid.uuid5(ALERT_NAMESPACE, key),
        occurred_at=end,
        participant_id=participant_id,
        kind=kind,
        metric=metric,
        severity=severity,
        rule=rule,
        detected_at=end,
        window_start=start,
        window_end=end,
        observed=list(observed),
        threshold=threshold,
        baseline=baseline,
        model_version=model_version,
        explanation=explanation,
    )


def build_alert(
    limit: Limit,
    band: int,
    participant_id: str,
    run: Run,
    detected_us: int,
    activity: Activity,
    *,
    escalated_from: int,
    model_version: str,
    baseline: float | None = None,
    after_minutes: float | None = None,
) -> AlertRaised:
    """The alert for `run` sustaining `band`, detected by the reading at `detected_us`."""
    start, end = to_datetime(run.start_us), to_datetime(detected_us)
    severity = SEVERITY_OF_BAND[band]
    return raise_alert(
        key=episode_key(participant_id, limit.rule, severity, run.first),
        participant_id=participant_id,
        kind=AlertKind.CLINICAL,
        metric=limit.metric,
        severity=severity,
        rule=limit.rule,
        start=start,
        end=end,
        observed=run.values,
        threshold=limit.threshold_for(band),
        baseline=baseline,
        model_version=model_version,
        explanation=explain(
            limit, band, run.values, start, end, activity, escalated_from, after_minutes
        )
        + (
            ""
            if baseline is None
            else f" Own resting baseline at this time of day: {number(baseline)}."
        ),
    )

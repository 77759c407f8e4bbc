"""Device data quality as its own kind of alert: a value stuck for too long (flatline) and a
participant who was sending falling silent (dropout).

Both are judged on stream time (measured_at), so replay and live agree; the live service
also checks silences against the wall clock (service.check_silences) because a silent
participant sends nothing that could move their own stream time on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from trialstream.events.alerts import AlertKind, AlertRaised, Severity
from trialstream.events.readings import UNITS, Metric

from anomaly.arrays import US_PER_MINUTE, segmented_cummax
from anomaly.config import Persistence, ScoringConfig
from anomaly.episodes import Hit, Rows
from anomaly.explain import NAMES, number, raise_alert, silence_key, span, to_datetime
from anomaly.state import ParticipantState

IntArray = npt.NDArray[np.int64]
DROPOUT_RULE = "device-quality/dropout"


def flatline_bands(rows: Rows) -> npt.NDArray[np.int8]:
    """1 where a reading repeats the value before it (the carried one for a group's first)."""
    prev = np.empty_like(rows.v)
    prev[1:] = rows.v[:-1]
    prev[rows.first] = rows.v_before
    same: npt.NDArray[np.int8] = (rows.v == prev).astype(np.int8)
    return same


@dataclass(frozen=True)
class _DeviceRule:
    """A device-quality rule about one metric: one level, alerts of kind device-quality."""

    metric: Metric
    levels = (1,)
    kind = AlertKind.DEVICE_QUALITY


@dataclass(frozen=True)
class FlatlineRule(_DeviceRule):
    @property
    def rule(self) -> str:
        return f"device-quality/flatline-{self.metric}"

    def persistence(self, config: ScoringConfig) -> Persistence:
        return config.flatline

    def build(self, hit: Hit) -> AlertRaised:
        run, unit = hit.run, UNITS[self.metric]
        start, end = to_datetime(run.start_us), to_datetime(hit.detected_us)
        value = number(run.values[-1]) if run.values else "?"
        minutes = round((hit.detected_us - run.start_us) / US_PER_MINUTE)
        explanation = (
            f"{NAMES[self.metric]} stuck at exactly {value} {unit} for {minutes} min "
            f"({span(start, end)}, {run.n + 1} identical readings in a row): a living "
            f"{NAMES[self.metric].lower()} varies from reading to reading, so the sensor is "
            "faulty or the device is not being worn. Check the device with the participant."
        )
        return hit.alert(self, Severity.LOW, explanation)


def jump_bands(
    rows: Rows,
    held: list[ParticipantState],
    config: ScoringConfig,
    irregular: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.int8], IntArray]:
    """1 where the trailing window holds at least `jumps_per_window` implausible jumps
    (the carried ones included); also each row's count. Keeps each participant's recent
    jump times for the next batch. Jumps inside an irregular rhythm (`irregular` per row)
    are the heart's, not the sensor's: they do not count; nor, with `jumps_at_rest_only`,
    do those while the participant walked (steps measured): a loose sensor shows them at
    rest too."""
    prev_v, prev_t = np.empty_like(rows.v), np.empty_like(rows.t)
    prev_v[1:], prev_t[1:] = rows.v[:-1], rows.t[:-1]
    prev_v[rows.first], prev_t[rows.first] = rows.v_before, rows.last_in
    gap = round(config.jump_max_gap_minutes * US_PER_MINUTE)
    with np.errstate(invalid="ignore"):  # NaN: nothing before
        jump = (np.abs(rows.v - prev_v) >= config.jump_bpm) & (rows.t - prev_t <= gap)
    if irregular is not None:
        jump &= ~irregular
    if config.jumps_at_rest_only:  # motion artefacts while walking are expected
        jump &= rows.steps <= config.rest_steps
    count = np.zeros(len(rows.t), dtype=np.int64)
    window = round(config.jumps_window_minutes * US_PER_MINUTE)
    for g, state in enumerate(held):
        lo, hi = int(rows.first[g]), int(rows.last[g]) + 1
        if not state.jumps_us and not jump[lo:hi].any():
            continue  # the common case
        times = np.concatenate([np.asarray(state.jumps_us, np.int64), rows.t[lo:hi][jump[lo:hi]]])
        t = rows.t[lo:hi]
        count[lo:hi] = np.searchsorted(times, t, side="right") - np.searchsorted(
            times, t - window, side="right"
        )
        state.jumps_us = times[times > t[-1] - window].tolist()
    band: npt.NDArray[np.int8] = (count >= config.jumps_per_window).astype(np.int8)
    return band, count


@dataclass(frozen=True)
class JumpsRule(_DeviceRule):
    """Many implausible jumps of one metric in a short time: a noisy or loose sensor."""

    count: IntArray  # per row: jumps in the trailing window

    @property
    def rule(self) -> str:
        return f"device-quality/implausible-jumps-{self.metric}"

    def persistence(self, config: ScoringConfig) -> Persistence:
        return config.jumps

    def build(self, hit: Hit) -> AlertRaised:
        cfg, end = hit.config, to_datetime(hit.detected_us)
        explanation = (
            f"{NAMES[self.metric]} jumped by {number(cfg.jump_bpm)} {UNITS[self.metric]} or "
            f"more between readings {int(self.count[hit.i])} times in the "
            f"{number(cfg.jumps_window_minutes)} min up to {end:%Y-%m-%d %H:%M} UTC: no "
            "heart changes that fast that often, so the sensor is noisy or loose. Its "
            "readings are not trustworthy until the fit is checked."
        )
        return hit.alert(self, Severity.LOW, explanation)


def dropout_alert(
    participant_id: str, last_us: int, config: ScoringConfig, model_version: str
) -> AlertRaised:
    """The alert for a silence that began after the reading measured at `last_us`. It is
    detected the moment the silence reached `dropout_minutes`, whoever noticed it (a later
    reading, the stream clock, the wall clock), so every path builds the same alert."""
    detected_us = last_us + round(config.dropout_minutes * US_PER_MINUTE)
    start, end = to_datetime(last_us), to_datetime(detected_us)
    explanation = (
        f"No readings of any kind for {number(config.dropout_minutes)} min since "
        f"{start:%Y-%m-%d %H:%M} UTC from a participant who was sending: the device may be "
        "off, not worn, out of battery or unable to upload. Contact the participant."
    )
    return raise_alert(
        key=silence_key(participant_id, DROPOUT_RULE, last_us),
        participant_id=participant_id,
        kind=AlertKind.DEVICE_QUALITY,
        metric=None,
        severity=Severity.LOW,
        rule=DROPOUT_RULE,
        start=start,
        end=end,
        observed=[],
        model_version=model_version,
        explanation=explanation,
    )


def gaps(
    p: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    seen_before: npt.NDArray[np.int64],
    limit_us: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Silences revealed inside a batch by a participant's own next reading: rows in
    arrival order (`p` participant indices, `t` measured times, non-late rows only);
    each row's time is compared with the newest of the participant's earlier ones
    (`seen_before[p]` before the batch, int64 min if none). Only the participant's own
    readings count: another participant's clock may be ahead (a lagging partition, a
    late upload) without this one having been silent. Returns (participant, silence
    start) pairs."""
    order = np.argsort(p, kind="stable")  # per participant, in arrival order
    ps, ts = p[order], t[order]
    start = np.ones(len(ps), dtype=np.bool_)
    start[1:] = ps[1:] != ps[:-1]
    own = segmented_cummax(ts, np.cumsum(start) - 1)
    prev = np.empty_like(own)
    prev[1:] = own[:-1]
    prev[start] = seen_before[ps[start]]
    hit = (prev > np.iinfo(np.int64).min) & (ts - prev >= limit_us)
    return ps[hit], prev[hit]

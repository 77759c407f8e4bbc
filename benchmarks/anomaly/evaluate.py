"""Event-level scoring of alerts against labelled events (pure: no I/O).

Matching. An event is detected when an alert of the same participant has `detected_at` in
[start, end + grace] (grace 30 min: an alert that needs a few readings to confirm an episode
that just ended still points staff to it) and is of the event's family: a clinical event
needs a clinical alert about the event's metric (early deterioration, several vitals at
once: any clinical alert); a device event (flatline, dropout) needs a device-quality alert. Latency is the first such alert's detected_at minus start, in
minutes of stream time.

Precision. An alert is true when it falls in [start, end + grace] of any event of the same
participant and family. Deliberately looser than detection for clinical alerts: a clinical
alert about another metric during a clinical episode (a fever's raised heart rate, a
desaturation's compensatory tachycardia) still sends staff to a real episode, so it is not a
false alarm, although it does not count as detecting the event. Only clinical and
device-quality alerts are scored; other kinds (ePRO safety) are not about wearables.

Quantiles are numpy's linear interpolation; a quantity without data (no alerts, no
detections) is None rather than a made-up number.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from trialstream.events.alerts import AlertKind, AlertRaised

from benchmarks.anomaly.labels import EventKind, Family, Label, LabelSet, family_of

GRACE = timedelta(minutes=30)
FAMILY_OF_ALERT = {AlertKind.CLINICAL: Family.CLINICAL, AlertKind.DEVICE_QUALITY: Family.DEVICE}


@dataclass(frozen=True)
class KindResult:
    kind: EventKind
    events: int
    detected: int
    median_latency_min: float | None
    p90_latency_min: float | None

    @property
    def recall(self) -> float | None:
        return self.detected / self.events if self.events else None


@dataclass(frozen=True)
class Evaluation:
    per_kind: tuple[KindResult, ...]
    alerts: int  # clinical and device-quality alerts scored
    true_alerts: int
    participant_days: float
    median_latency_min: float | None  # over every detected event
    false_by_rule: tuple[tuple[str, int], ...] = ()  # most frequent first
    latencies: tuple[tuple[EventKind, float], ...] = ()  # every detection, for pooling

    def _recall(self, family: Family) -> float | None:
        rows = [r for r in self.per_kind if family_of(r.kind) is family]
        events = sum(r.events for r in rows)
        return sum(r.detected for r in rows) / events if events else None

    @property
    def clinical_recall(self) -> float | None:
        return self._recall(Family.CLINICAL)

    @property
    def device_recall(self) -> float | None:
        return self._recall(Family.DEVICE)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def false_alerts(self) -> int:
        return self.alerts - self.true_alerts

    @property
    def false_alerts_per_participant_day(self) -> float:
        return self.false_alerts / self.participant_days

    def summary(self) -> dict[str, float | None]:
        return {
            "clinical_recall": self.clinical_recall,
            "device_recall": self.device_recall,
            "precision": self.precision,
            "false_alerts_per_participant_day": self.false_alerts_per_participant_day,
            "median_latency_min": self.median_latency_min,
            "alerts": float(self.alerts),
            "false_alerts": float(self.false_alerts),
        }


def _quantile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _index(alerts: Iterable[AlertRaised]) -> dict[tuple[str, Family], list[AlertRaised]]:
    """Scored alerts by (participant, family), each list sorted by detected_at."""
    found: dict[tuple[str, Family], list[AlertRaised]] = defaultdict(list)
    for alert in alerts:
        family = FAMILY_OF_ALERT.get(alert.kind)
        if family is not None:
            found[(alert.participant_id, family)].append(alert)
    for rows in found.values():
        rows.sort(key=lambda a: a.detected_at)
    return found


def _in_window(rows: list[AlertRaised], label: Label, grace: timedelta) -> list[AlertRaised]:
    times = [a.detected_at for a in rows]
    lo, hi = bisect_left(times, label.start), bisect_right(times, label.end + grace)
    return rows[lo:hi]


def first_detection(
    label: Label,
    alerts: dict[tuple[str, Family], list[AlertRaised]],
    grace: timedelta = GRACE,
    match_metric: bool = True,
) -> AlertRaised | None:
    """The earliest alert that detects `label`, if any."""
    for alert in _in_window(alerts.get((label.participant_id, label.family), []), label, grace):
        if not match_metric or label.metric is None or alert.metric == label.metric:
            return alert
    return None


def evaluate(
    alerts: Iterable[AlertRaised],
    labels: LabelSet,
    grace: timedelta = GRACE,
    *,
    match_metric: bool = True,
) -> Evaluation:
    """`match_metric=False` is issue 21's rule: an alert of the event's family naming the
    participant inside the window detects it, whatever metric it is about."""
    by_key = _index(alerts)
    latencies: dict[EventKind, list[float]] = {k: [] for k in EventKind}
    counts: dict[EventKind, int] = dict.fromkeys(EventKind, 0)
    true_ids: set[int] = set()
    for label in labels.labels:
        counts[label.kind] += 1
        hit = first_detection(label, by_key, grace, match_metric)
        if hit is not None:
            latencies[label.kind].append((hit.detected_at - label.start) / timedelta(minutes=1))
        rows = by_key.get((label.participant_id, label.family), [])
        true_ids.update(id(a) for a in _in_window(rows, label, grace))
    per_kind = tuple(
        KindResult(
            kind=k,
            events=counts[k],
            detected=len(latencies[k]),
            median_latency_min=_quantile(latencies[k], 50),
            p90_latency_min=_quantile(latencies[k], 90),
        )
        for k in EventKind
    )
    every = [x for k in EventKind for x in latencies[k]]
    scored = [a for rows in by_key.values() for a in rows]
    false_rules = Counter(a.rule for a in scored if id(a) not in true_ids)
    return Evaluation(
        per_kind=per_kind,
        alerts=len(scored),
        true_alerts=len(true_ids),
        participant_days=labels.participant_days,
        median_latency_min=_quantile(every, 50),
        false_by_rule=tuple(false_rules.most_common()),
        latencies=tuple((k, x) for k in EventKind for x in latencies[k]),
    )

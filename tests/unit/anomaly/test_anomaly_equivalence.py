"""The vectorised Scorer against the reading-at-a-time reference, on random messy streams:
same alerts however the stream is cut into batches and wherever it is checkpointed."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from typing import Any

import pytest
from anomaly.config import Persistence, ScoringConfig
from anomaly.domain import Scorer
from anomaly_reference import ReferenceScorer
from anomaly_streams import random_stream
from trialstream.events.alerts import AlertRaised
from trialstream.events.readings import Metric, ReadingReceived

SEEDS = range(40)
# The reference states the clinical-limit rules only; the other detectors have tests of their
# own. The 5-minutely metrics get a longer persistence than the default here: longer runs
# carried across more batch cuts make the equivalence harder to pass.
_SLOW = Persistence(3, 10, 15, 3)
LIMITS_ONLY = ScoringConfig(
    device_quality=False,
    personal_baselines=False,
    multivariate=False,
    persistence={
        Metric.HEART_RATE: Persistence(5, 4, 15, 5),
        Metric.OXYGEN_SATURATION: _SLOW,
        Metric.BODY_TEMPERATURE: _SLOW,
        Metric.RESPIRATORY_RATE: _SLOW,
    },
)


def in_order(alerts: Sequence[AlertRaised]) -> list[AlertRaised]:
    return sorted(alerts, key=lambda a: (a.detected_at, a.participant_id, a.rule, a.severity))


def cuts(rng: random.Random, n: int) -> list[int]:
    points = sorted(rng.sample(range(1, n), k=rng.randint(1, n // 4)))
    return [0, *points, n]


def score_in_pieces(
    readings: Sequence[ReadingReceived], rng: random.Random, *, checkpoint: bool
) -> list[AlertRaised]:
    """Score batch by batch; with `checkpoint`, every batch runs in a fresh scorer restored
    from the JSON snapshot of the batch's participants (as the service does)."""
    bounds = cuts(rng, len(readings))
    scorer, alerts = Scorer(LIMITS_ONLY), []
    stored: dict[str, dict[str, Any]] = {}
    for lo, hi in itertools.pairwise(bounds):
        batch = readings[lo:hi]
        if checkpoint:
            ids = list(dict.fromkeys(r.participant_id for r in batch))
            scorer = Scorer(LIMITS_ONLY)
            scorer.restore({p: stored[p] for p in ids if p in stored})
        alerts += scorer.score(batch)
        if checkpoint:
            stored |= json.loads(json.dumps(scorer.snapshot(ids)))
    return alerts


@pytest.mark.parametrize("seed", SEEDS)
def test_scorer_matches_reference_on_random_streams(seed: int) -> None:
    readings = random_stream(seed)
    expected = in_order(ReferenceScorer(LIMITS_ONLY).score(readings))
    assert in_order(Scorer(LIMITS_ONLY).score(readings)) == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_batch_cuts_and_checkpoints_do_not_change_alerts(seed: int) -> None:
    readings = random_stream(seed)
    expected = in_order(ReferenceScorer(LIMITS_ONLY).score(readings))
    rng = random.Random(seed)
    assert in_order(score_in_pieces(readings, rng, checkpoint=False)) == expected
    assert in_order(score_in_pieces(readings, rng, checkpoint=True)) == expected


def test_random_streams_exercise_every_kind_of_alert() -> None:
    """Guards the generator: equivalence on streams that never alert would prove little."""
    alerts = [a for seed in SEEDS for a in ReferenceScorer(LIMITS_ONLY).score(random_stream(seed))]
    rules = {a.rule for a in alerts}
    assert len(rules) == 7
    assert {a.severity for a in alerts} == {"low", "medium", "high"}
    assert any(a.explanation.startswith("Escalated") for a in alerts)
    assert any("at rest (" in a.explanation for a in alerts)
    assert any(len(a.observed) > 5 for a in alerts)  # runs carried over many readings

"""Each (study, site)'s dropout-risk summary from the latest scores (aggregates only)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from retention.scoring import summaries

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_sites_are_summarised_apart_with_the_share_at_or_above_the_cutoff() -> None:
    scored = [
        ("S1", "a", 0.1), ("S1", "a", 0.3), ("S1", "a", 0.5), ("S1", "a", 0.2),
        ("S2", "a", 0.9),  # the same site id in another study: its own summary
        ("S1", "b", 0.05),
    ]  # fmt: skip
    made = dict(summaries(scored, 0.3, "model-v", NOW))
    assert list(made) == ["S1|a", "S1|b", "S2|a"]
    a = made["S1|a"]
    assert (a.study_id, a.site_id, a.scored_at, a.model_version) == ("S1", "a", NOW, "model-v")
    assert (a.participants_scored, a.high_risk, a.high_risk_cutoff) == (4, 2, 0.3)
    assert a.high_risk_share == 0.5
    assert a.mean_risk == pytest.approx(0.275)
    assert (made["S1|b"].high_risk, made["S1|b"].high_risk_share) == (0, 0.0)
    assert (made["S2|a"].high_risk, made["S2|a"].mean_risk) == (1, 0.9)


def test_nobody_scored_is_no_summary() -> None:
    assert summaries([], 0.3, "model-v", NOW) == []

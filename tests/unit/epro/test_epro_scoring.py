"""PHQ-9 / GAD-7 totals and severity bands, and the PHQ-9 item 9 safety signal."""

from __future__ import annotations

import pytest
from epro.domain.definitions import shipped
from epro.domain.scoring import safety_signals, score

Q = {q.id: q for q in shipped()}


def phq9(*values: int) -> dict[str, str]:
    answers = {f"phq9-{i}": str(v) for i, v in enumerate(values, 1)}
    if any(values):
        answers["phq9-10"] = "somewhat"
    return answers


@pytest.mark.parametrize(
    ("values", "total", "band"),
    [
        ((0, 0, 0, 0, 0, 0, 0, 0, 0), 0, "minimal"),
        ((1, 1, 1, 1, 0, 0, 0, 0, 0), 4, "minimal"),
        ((1, 1, 1, 1, 1, 0, 0, 0, 0), 5, "mild"),
        ((2, 2, 2, 2, 1, 0, 0, 0, 0), 9, "mild"),
        ((2, 2, 2, 2, 2, 0, 0, 0, 0), 10, "moderate"),
        ((3, 3, 3, 3, 3, 0, 0, 0, 0), 15, "moderately severe"),
        ((3, 3, 3, 3, 3, 3, 2, 0, 0), 20, "severe"),
        ((3, 3, 3, 3, 3, 3, 3, 3, 3), 27, "severe"),
    ],
)
def test_phq9_total_and_band(values: tuple[int, ...], total: int, band: str) -> None:
    [s] = score(Q["phq-9"], phq9(*values))
    assert (s.name, s.value, s.band) == ("phq9_total", total, band)


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (5, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_total_and_band(total: int, band: str) -> None:
    values = [min(3, max(0, total - 3 * i)) for i in range(7)]
    [s] = score(Q["gad-7"], {f"gad7-{i}": str(v) for i, v in enumerate(values, 1)})
    assert (s.value, s.band) == (total, band)


def test_difficulty_item_does_not_count_towards_the_phq9_total() -> None:
    [s] = score(Q["phq-9"], {**phq9(1, 0, 0, 0, 0, 0, 0, 0, 0), "phq9-10": "extremely"})
    assert s.value == 1


def test_item9_above_zero_is_a_safety_signal() -> None:
    [signal] = safety_signals(Q["phq-9"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 1))
    assert (signal.rule.rule, signal.value) == ("epro/phq9-item9-self-harm", 1)


def test_item9_at_zero_is_no_safety_signal_even_with_a_high_total() -> None:
    assert safety_signals(Q["phq-9"], phq9(3, 3, 3, 3, 3, 3, 3, 3, 0)) == []


def test_pain_nrs_score_is_the_rating() -> None:
    [s] = score(Q["pain-nrs"], {"pain": 7})
    assert (s.name, s.value, s.band) == ("pain_nrs", 7, "severe")

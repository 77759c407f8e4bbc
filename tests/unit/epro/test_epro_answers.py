"""Answers are checked against the exact version, field by field, with branching."""

from __future__ import annotations

from typing import Any

import pytest
from epro.domain.answers import check_answers, enabled_items
from epro.domain.definitions import Questionnaire, shipped

Q = {q.id: q for q in shipped() if q.version == 1}  # the first published versions


def phq9(*values: int, **extra: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {f"phq9-{i}": str(v) for i, v in enumerate(values, 1)}
    answers.update(extra)
    return answers


def codes(q: Questionnaire, answers: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in check_answers(q, answers)]


def test_a_complete_phq9_without_problems_is_valid() -> None:
    assert codes(Q["phq-9"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0)) == []


def test_difficulty_item_is_shown_only_when_a_problem_was_reported() -> None:
    q = Q["phq-9"]
    assert "phq9-10" not in enabled_items(q, phq9(0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert "phq9-10" in enabled_items(q, phq9(0, 0, 1, 0, 0, 0, 0, 0, 0))


def test_missing_required_item_is_reported_on_its_field() -> None:
    answers = phq9(0, 0, 0, 0, 0, 0, 0, 0, 0)
    del answers["phq9-3"]
    assert codes(Q["phq-9"], answers) == [("answers.phq9-3", "required")]


def test_a_shown_required_branch_item_must_be_answered() -> None:
    assert codes(Q["phq-9"], phq9(1, 0, 0, 0, 0, 0, 0, 0, 0)) == [("answers.phq9-10", "required")]


def test_answer_to_a_skipped_item_is_refused() -> None:
    answers = phq9(0, 0, 0, 0, 0, 0, 0, 0, 0, **{"phq9-10": "very"})
    assert codes(Q["phq-9"], answers) == [("answers.phq9-10", "not_enabled")]


def test_unknown_option_is_refused() -> None:
    answers = phq9(0, 0, 0, 0, 0, 0, 0, 0, 0)
    answers["phq9-2"] = "4"
    assert codes(Q["phq-9"], answers) == [("answers.phq9-2", "unknown_option")]


@pytest.mark.parametrize(
    ("value", "code"),
    [(11, "out_of_range"), (-1, "out_of_range"), (True, "wrong_type"), ("5", "wrong_type")],
)
def test_pain_rating_outside_0_to_10_or_not_a_number_is_refused(value: object, code: str) -> None:
    assert codes(Q["pain-nrs"], {"pain": value}) == [("answers.pain", code)]


def test_unknown_item_is_refused() -> None:
    assert codes(Q["pain-nrs"], {"pain": 3, "mood": 2}) == [("answers.mood", "unknown_item")]


def test_diary_branches_on_yes_no_and_on_a_selected_option() -> None:
    q = Q["daily-diary"]
    base = {"wellbeing": 7, "new-symptoms": False, "took-medication": True}
    assert codes(q, base) == []
    yes = {**base, "new-symptoms": True}
    assert codes(q, yes) == [("answers.symptoms", "required")]
    assert codes(q, {**yes, "symptoms": ["headache"]}) == []
    assert codes(q, {**yes, "symptoms": ["headache", "other"]}) == [
        ("answers.symptoms-other", "required")
    ]
    assert codes(q, {**yes, "symptoms": ["other"], "symptoms-other": "itchy eyes"}) == []
    assert codes(q, {**base, "symptoms": ["headache"]}) == [("answers.symptoms", "not_enabled")]


def test_an_invalid_answer_enables_nothing() -> None:
    q = Q["daily-diary"]
    answers = {"wellbeing": 7, "new-symptoms": "yes", "took-medication": True, "symptoms": ["rash"]}
    assert codes(q, answers) == [
        ("answers.new-symptoms", "wrong_type"),
        ("answers.symptoms", "not_enabled"),
    ]


def test_dates_and_text_are_checked() -> None:
    q = Q["daily-diary"]
    answers = {
        "wellbeing": 7, "new-symptoms": True, "took-medication": True, "symptoms": ["rash"],
        "symptom-start": "2026-02-30", "notes": "x" * 1001,
    }  # fmt: skip
    assert codes(q, answers) == [
        ("answers.symptom-start", "invalid_date"),
        ("answers.notes", "invalid_text"),
    ]


def test_multiple_choice_needs_distinct_known_codes() -> None:
    q = Q["daily-diary"]
    base = {"wellbeing": 7, "new-symptoms": True, "took-medication": True}
    assert codes(q, {**base, "symptoms": ["rash", "rash"]}) == [
        ("answers.symptoms", "invalid_selection")
    ]
    assert codes(q, {**base, "symptoms": ["flu"]})[0] == ("answers.symptoms", "unknown_option")


def test_null_counts_as_not_answered() -> None:
    assert codes(Q["pain-nrs"], {"pain": None}) == [("answers.pain", "required")]

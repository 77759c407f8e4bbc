"""Questionnaire definitions: shipped examples load, inconsistent definitions are refused."""

from __future__ import annotations

from typing import Any

import pytest
from epro.domain.definitions import Catalog, Questionnaire, shipped
from pydantic import ValidationError


def minimal(**changes: Any) -> dict[str, Any]:
    q: dict[str, Any] = {
        "id": "mini",
        "version": 1,
        "title": {"en": "Mini", "de": "Mini"},
        "languages": ["en", "de"],
        "items": [
            {"link_id": "a", "type": "yes_no", "required": True, "text": {"en": "A?", "de": "A?"}},
            {
                "link_id": "b",
                "type": "rating",
                "min": 0,
                "max": 10,
                "text": {"en": "B?", "de": "B?"},
                "enable_when": [{"item": "a", "answer": True}],
            },
        ],
    }
    q.update(changes)
    return q


def test_shipped_examples_are_diary_v1_v2_phq9_gad7_and_pain_nrs() -> None:
    assert sorted(q.key for q in shipped()) == [
        ("daily-diary", 1),
        ("daily-diary", 2),
        ("gad-7", 1),
        ("pain-nrs", 1),
        ("phq-9", 1),
    ]


def test_every_shipped_text_is_translated_into_every_declared_language() -> None:
    for q in shipped():
        for item in q.items:
            assert set(item.text) == set(q.languages), (q.id, item.link_id)


def test_a_consistent_definition_loads() -> None:
    assert Questionnaire.model_validate(minimal()).item("b") is not None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"title": {"en": "Mini"}}, "title: no text for language de"),
        (
            {"items": [{"link_id": "a", "type": "single_choice", "text": {"en": "A", "de": "A"}}]},
            "a choice item needs options",
        ),
        (
            {"items": [{"link_id": "a", "type": "rating", "min": 5, "max": 5, "text": {"en": "A", "de": "A"}}]},
            "needs min < max",
        ),
        (
            {
                "items": [
                    {"link_id": "a", "type": "yes_no", "text": {"en": "A", "de": "A"},
                     "enable_when": [{"item": "b", "answer": True}]},
                    {"link_id": "b", "type": "yes_no", "text": {"en": "B", "de": "B"}},
                ]
            },
            "not an earlier item",
        ),
        (
            {"items": [{"link_id": "a", "type": "yes_no", "text": {"en": "A", "de": "A"}},
                       {"link_id": "a", "type": "yes_no", "text": {"en": "A", "de": "A"}}]},
            "link_id values repeat",
        ),
        ({"scores": [{"name": "total", "items": ["a"]}]}, "a is not a scored item"),
    ],
)  # fmt: skip
def test_an_inconsistent_definition_is_refused_with_the_reason(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        Questionnaire.model_validate(minimal(**changes))


def test_a_definition_cannot_be_changed_in_place() -> None:
    q = Questionnaire.model_validate(minimal())
    with pytest.raises(ValidationError):
        q.version = 2  # type: ignore[misc]


def test_digest_changes_with_content_and_not_otherwise() -> None:
    a, b = Questionnaire.model_validate(minimal()), Questionnaire.model_validate(minimal())
    changed = Questionnaire.model_validate(minimal(title={"en": "Other", "de": "Andere"}))
    assert a.digest() == b.digest() != changed.digest()


def test_catalog_keeps_the_first_published_content_of_a_version() -> None:
    first = Questionnaire.model_validate(minimal())
    catalog = Catalog([first])
    catalog.add(Questionnaire.model_validate(minimal(title={"en": "X", "de": "X"})))
    catalog.add(Questionnaire.model_validate(minimal(version=2)))
    assert catalog.get("mini", 1) == first
    latest = catalog.latest("mini")
    assert latest is not None
    assert latest.version == 2


def test_diary_v2_adds_an_optional_activity_item_scored_for_monitoring() -> None:
    from epro.domain.scoring import score

    v1, v2 = (q for q in shipped() if q.id == "daily-diary")
    assert [i.link_id for i in v2.items if v1.item(i.link_id) is None] == ["activity"]
    activity = v2.item("activity")
    assert activity is not None
    assert not activity.required
    answers = {"wellbeing": 5, "new-symptoms": False, "took-medication": True}
    assert [(s.name, s.value) for s in score(v2, {**answers, "activity": "bed"})] == [
        ("activity_level", 0)
    ]
    assert score(v2, answers) == []  # unanswered: no score, so no cross-check

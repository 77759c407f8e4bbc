"""Checking a set of answers against the exact questionnaire version. Pure.

Answers are a JSON object `{link_id: value}`: a choice code (single choice), a list
of codes (multiple choice), an integer (rating, integer), true/false (yes/no), an
ISO date string (date) or a string (text). Every problem is reported per field, so
the app can show it next to the question.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from trialstream.validation import FieldError

from epro.domain.definitions import Condition, Item, ItemType, Operator, Questionnaire

Answer = bool | int | str | list[str]


def _matches(cond: Condition, given: Answer | None) -> bool:
    if given is None:
        return False  # an unanswered or hidden item enables nothing
    if isinstance(given, list):
        contained = str(cond.answer) in given
        return contained if cond.operator is Operator.EQUALS else not contained
    if cond.operator is Operator.EQUALS:
        return given == cond.answer or (isinstance(given, str) and given == str(cond.answer))
    if cond.operator is Operator.NOT_EQUALS:
        return given != cond.answer and not (isinstance(given, str) and given == str(cond.answer))
    left, right = _number(given), _number(cond.answer)
    if left is None or right is None:
        return False
    return left > right if cond.operator is Operator.GREATER else left < right


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def enabled_items(q: Questionnaire, answers: dict[str, Answer]) -> set[str]:
    """The link_ids shown for these answers. Conditions refer to earlier items only, so
    one pass in order decides it; an answer to a hidden item never enables another."""
    shown: set[str] = set()
    for item in q.items:
        if not item.enable_when:
            shown.add(item.link_id)
            continue
        results = [
            _matches(c, answers.get(c.item) if c.item in shown else None) for c in item.enable_when
        ]
        if all(results) if item.enable_behavior == "all" else any(results):
            shown.add(item.link_id)
    return shown


def _type_error(item: Item, value: Any) -> str | None:
    expected = {
        ItemType.SINGLE_CHOICE: "an option code (string)",
        ItemType.MULTIPLE_CHOICE: "a list of option codes",
        ItemType.RATING: "a whole number",
        ItemType.INTEGER: "a whole number",
        ItemType.YES_NO: "true or false",
        ItemType.DATE: "a date YYYY-MM-DD",
        ItemType.TEXT: "a string",
    }[item.type]
    ok = {
        ItemType.SINGLE_CHOICE: isinstance(value, str),
        ItemType.MULTIPLE_CHOICE: isinstance(value, list)
        and all(isinstance(v, str) for v in value),
        ItemType.RATING: isinstance(value, int) and not isinstance(value, bool),
        ItemType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
        ItemType.YES_NO: isinstance(value, bool),
        ItemType.DATE: isinstance(value, str),
        ItemType.TEXT: isinstance(value, str),
    }[item.type]
    return None if ok else f"expected {expected}"


def _value_errors(item: Item, value: Any, field: str) -> list[FieldError]:
    problem = _type_error(item, value)
    if problem is not None:
        return [FieldError(field, "wrong_type", f"{item.link_id}: {problem}")]
    codes = {o.code for o in item.options}
    if item.type is ItemType.SINGLE_CHOICE and value not in codes:
        return [
            FieldError(field, "unknown_option", f"{value!r} is not an option of {item.link_id}")
        ]
    if item.type is ItemType.MULTIPLE_CHOICE:
        unknown = [v for v in value if v not in codes]
        if unknown:
            return [
                FieldError(field, "unknown_option", f"{unknown} are not options of {item.link_id}")
            ]
        if not value or len(set(value)) != len(value):
            return [FieldError(field, "invalid_selection", "select one or more distinct options")]
    if item.min is not None and item.max is not None and not item.min <= value <= item.max:
        return [
            FieldError(
                field,
                "out_of_range",
                f"{value} is outside {item.min}-{item.max} for {item.link_id}",
            )
        ]
    if item.type is ItemType.DATE:
        try:
            date.fromisoformat(value)
        except ValueError:
            return [FieldError(field, "invalid_date", f"{value!r} is not a date YYYY-MM-DD")]
    if item.type is ItemType.TEXT and (not value.strip() or len(value) > item.max_length):
        return [FieldError(field, "invalid_text", f"1-{item.max_length} characters expected")]
    return []


def check_answers(q: Questionnaire, answers: dict[str, Any]) -> list[FieldError]:
    """Every problem with `answers` for questionnaire `q`; empty when they are valid."""
    answers = {k: v for k, v in answers.items() if v is not None}  # null = not answered
    errors: list[FieldError] = []
    known = {i.link_id for i in q.items}
    for link_id in answers:
        if link_id not in known:
            errors.append(
                FieldError(
                    f"answers.{link_id}",
                    "unknown_item",
                    f"{q.id} v{q.version} has no item {link_id}",
                )
            )
    valid = {}
    for item in q.items:
        if item.link_id in answers:
            item_errors = _value_errors(item, answers[item.link_id], f"answers.{item.link_id}")
            errors += item_errors
            if not item_errors:
                valid[item.link_id] = answers[item.link_id]
    shown = enabled_items(q, valid)
    for item in q.items:
        field = f"answers.{item.link_id}"
        if item.link_id not in shown and item.link_id in answers:
            errors.append(
                FieldError(
                    field,
                    "not_enabled",
                    f"{item.link_id} is skipped for these answers and must not be answered",
                )
            )
        elif item.link_id in shown and item.required and item.link_id not in answers:
            errors.append(FieldError(field, "required", f"{item.link_id} is required"))
    return errors

"""Scores, severity bands and safety signals of a valid set of answers. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from epro.domain.definitions import ItemType, Questionnaire, SafetyRule


@dataclass(frozen=True)
class Score:
    name: str
    value: int
    band: str | None


@dataclass(frozen=True)
class SafetySignal:
    rule: SafetyRule
    value: int


def item_value(q: Questionnaire, link_id: str, answer: Any) -> int | None:
    """The numeric value of one answer: an option's score, or the number itself."""
    item = q.item(link_id)
    if item is None or answer is None:
        return None
    if item.type is ItemType.SINGLE_CHOICE:
        option = next((o for o in item.options if o.code == answer), None)
        return option.score if option else None
    if item.type is ItemType.MULTIPLE_CHOICE:
        scores = [o.score for o in item.options if o.code in answer and o.score is not None]
        return sum(scores) if scores else None
    if isinstance(answer, int) and not isinstance(answer, bool):
        return answer
    return None


def score(q: Questionnaire, answers: dict[str, Any]) -> list[Score]:
    """Each score rule's sum. A score with an unanswered item is left out, not guessed."""
    out = []
    for rule in q.scores:
        values = [item_value(q, link_id, answers.get(link_id)) for link_id in rule.items]
        if any(v is None for v in values):
            continue
        total = sum(v for v in values if v is not None)
        band = next((b.label for b in rule.bands if b.min <= total <= b.max), None)
        out.append(Score(rule.name, total, band))
    return out


def safety_signals(q: Questionnaire, answers: dict[str, Any]) -> list[SafetySignal]:
    out = []
    for rule in q.safety:
        value = item_value(q, rule.item, answers.get(rule.item))
        if value is not None and value > rule.above:
            out.append(SafetySignal(rule, value))
    return out

"""Questionnaire definitions: immutable, versioned, checked for consistency when loaded.

A definition is data (JSON shipped in `epro/questionnaires/` or published by an
admin), never code. Pure module: no database, no HTTP.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from importlib.resources import files
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from trialstream.events.base import LanguageTag

Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# A registered BCP 47 tag, in the short form the questionnaire files use ("en", "pt-BR").
Language = Annotated[LanguageTag, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]
Text = dict[str, str]  # language -> text


class ItemType(StrEnum):
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    RATING = "rating"  # numeric rating scale, e.g. 0-10 pain NRS
    INTEGER = "integer"
    YES_NO = "yes_no"
    DATE = "date"
    TEXT = "text"


CHOICE_TYPES = frozenset({ItemType.SINGLE_CHOICE, ItemType.MULTIPLE_CHOICE})
RANGED_TYPES = frozenset({ItemType.RATING, ItemType.INTEGER})


class Operator(StrEnum):
    EQUALS = "="  # for multiple choice: the selection contains the code
    NOT_EQUALS = "!="
    GREATER = ">"
    LESS = "<"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Option(_Frozen):
    code: Code
    score: int | None = None
    text: Text


class Condition(_Frozen):
    """Show the item only if the answer to `item` compares to `answer` (FHIR enableWhen)."""

    item: Code
    operator: Operator = Operator.EQUALS
    answer: bool | int | str


class Item(_Frozen):
    link_id: Code
    type: ItemType
    text: Text
    required: bool = False
    options: tuple[Option, ...] = ()
    min: int | None = None
    max: int | None = None
    min_label: Text | None = None  # anchors of a rating scale, e.g. "No pain"
    max_label: Text | None = None
    max_length: int = Field(default=1000, ge=1, le=10_000)
    enable_when: tuple[Condition, ...] = ()
    enable_behavior: Literal["all", "any"] = "all"


class Band(_Frozen):
    min: int
    max: int
    label: str


class ScoreRule(_Frozen):
    """`name` = the sum of the option scores (or numeric values) of `items`."""

    name: Code
    items: tuple[Code, ...]
    bands: tuple[Band, ...] = ()


class SafetyRule(_Frozen):
    """An answer above `above` to `item` raises an urgent alert to site staff."""

    rule: str
    item: Code
    above: int
    explanation: str


class Questionnaire(_Frozen):
    id: Code
    version: int = Field(ge=1)
    title: Text
    languages: tuple[Language, ...] = Field(min_length=1)
    preamble: Text | None = None
    items: tuple[Item, ...] = Field(min_length=1)
    scores: tuple[ScoreRule, ...] = ()
    safety: tuple[SafetyRule, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)

    def item(self, link_id: str) -> Item | None:
        return next((i for i in self.items if i.link_id == link_id), None)

    def digest(self) -> str:
        """Content hash: a published (id, version) may never change it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @model_validator(mode="after")
    def _consistent(self) -> Questionnaire:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _missing_languages(text: Text | None, languages: tuple[str, ...], where: str) -> list[str]:
    if text is None:
        return []
    missing = [lang for lang in languages if not text.get(lang, "").strip()]
    return [f"{where}: no text for language {', '.join(missing)}"] if missing else []


def _item_problems(item: Item, languages: tuple[str, ...]) -> list[str]:
    where = f"item {item.link_id}"
    out = _missing_languages(item.text, languages, where)
    for label in (item.min_label, item.max_label):
        out += _missing_languages(label, languages, where)
    if item.type in CHOICE_TYPES:
        codes = [o.code for o in item.options]
        if not codes:
            out.append(f"{where}: a choice item needs options")
        if len(set(codes)) != len(codes):
            out.append(f"{where}: option codes repeat")
        for option in item.options:
            out += _missing_languages(option.text, languages, f"{where} option {option.code}")
    elif item.options:
        out.append(f"{where}: only choice items have options")
    if item.type in RANGED_TYPES:
        if item.min is None or item.max is None or item.min >= item.max:
            out.append(f"{where}: a {item.type} item needs min < max")
    elif item.min is not None or item.max is not None:
        out.append(f"{where}: only rating and integer items have a range")
    return out


def _condition_problems(q: Questionnaire) -> list[str]:
    out: list[str] = []
    seen: dict[str, Item] = {}
    for item in q.items:
        for cond in item.enable_when:
            source = seen.get(cond.item)
            if source is None:
                out.append(
                    f"item {item.link_id}: enable_when refers to {cond.item}, not an earlier item"
                )
            elif source.type in CHOICE_TYPES and str(cond.answer) not in {
                o.code for o in source.options
            }:
                out.append(f"item {item.link_id}: enable_when answer {cond.answer!r} is no option")
        seen[item.link_id] = item
    return out


def _problems(q: Questionnaire) -> list[str]:
    out = _missing_languages(q.title, q.languages, "title")
    out += _missing_languages(q.preamble, q.languages, "preamble")
    ids = [i.link_id for i in q.items]
    if len(set(ids)) != len(ids):
        out.append("link_id values repeat")
    for item in q.items:
        out += _item_problems(item, q.languages)
    out += _condition_problems(q)
    numeric = {i.link_id for i in q.items if i.type in RANGED_TYPES or i.type in CHOICE_TYPES}
    for rule in q.scores:
        out += [
            f"score {rule.name}: {c} is not a scored item" for c in rule.items if c not in numeric
        ]
    for safety in q.safety:
        if safety.item not in numeric:
            out.append(f"safety {safety.rule}: {safety.item} is not a scored item")
    return out


def shipped() -> list[Questionnaire]:
    """The example definitions shipped with the service (diary, PHQ-9, GAD-7, pain NRS)."""
    directory = files("epro") / "questionnaires"
    found = [
        Questionnaire.model_validate_json(f.read_text("utf-8"))
        for f in sorted(directory.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".json")
    ]
    return found


class Catalog:
    """Published definitions by (id, version). Read-only once built."""

    def __init__(self, questionnaires: list[Questionnaire]) -> None:
        self._by_key = {q.key: q for q in questionnaires}

    def get(self, questionnaire_id: str, version: int) -> Questionnaire | None:
        return self._by_key.get((questionnaire_id, version))

    def add(self, questionnaire: Questionnaire) -> None:
        self._by_key.setdefault(questionnaire.key, questionnaire)

    def latest(self, questionnaire_id: str) -> Questionnaire | None:
        versions = [q for (qid, _), q in self._by_key.items() if qid == questionnaire_id]
        return max(versions, key=lambda q: q.version) if versions else None

    def all(self) -> list[Questionnaire]:
        return sorted(self._by_key.values(), key=lambda q: q.key)

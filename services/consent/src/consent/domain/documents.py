"""Consent documents: what a study admin publishes, its hash, and comprehension.

A document version is immutable: its SHA-256 is taken over the canonical JSON of
everything the participant is shown and asked (format, title, sections, scopes,
questions with their answers), so the hash a signature records pins the exact text.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from trialstream.events.base import LanguageTag, SiteId, StudyId, TrialDate
from trialstream.events.consents import ConsentScope

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Section(_Strict):
    id: Id
    title: Short
    body: Text  # markdown or HTML, as the document's format says


class Question(_Strict):
    """A comprehension question about one section; a wrong answer shows the section again."""

    id: Id
    section: Id
    text: Short
    options: list[Short] = Field(min_length=2, max_length=10)
    answer: int = Field(ge=0, description="Index of the right option (never shown)")

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> Question:
        if self.answer >= len(self.options):
            raise ValueError(f"answer must be an index of options (0-{len(self.options) - 1})")
        return self


class DocumentBody(_Strict):
    """What is hashed: the text, the scopes offered, the questions."""

    format: Literal["markdown", "html"]
    title: Short
    sections: list[Section] = Field(min_length=1, max_length=100)
    scopes: list[ConsentScope] = Field(min_length=1)
    questions: list[Question] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _consistent(self) -> DocumentBody:
        sections = [s.id for s in self.sections]
        for what, ids in (
            ("section id", sections),
            ("question id", [q.id for q in self.questions]),
            ("scope", [str(s) for s in self.scopes]),
        ):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"each {what} may appear once; repeated: {', '.join(twice)}")
        unknown = sorted({q.section for q in self.questions} - set(sections))
        if unknown:
            raise ValueError(f"questions name sections the document lacks: {', '.join(unknown)}")
        return self

    def canonical(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()

    def shown(self) -> dict[str, Any]:
        """The document as the participant's app gets it: questions without answers."""
        out = self.model_dump(mode="json")
        out["questions"] = [{k: v for k, v in q.items() if k != "answer"} for q in out["questions"]]
        return out


class NewDocument(DocumentBody):
    """`POST /v1/consent/documents`: one language of one version, for one site or all."""

    study_id: StudyId
    version: int = Field(ge=1)
    site_id: SiteId | None = Field(default=None, description="None: every site of the study")
    language: LanguageTag
    requires_reconsent: bool = Field(
        default=False,
        description="A protocol amendment: participants who signed an earlier version must "
        "sign this one by `reconsent_by`.",
    )
    reconsent_by: TrialDate | None = None

    @model_validator(mode="after")
    def _deadline(self) -> NewDocument:
        if self.requires_reconsent and self.reconsent_by is None:
            raise ValueError("a version that requires re-consent needs reconsent_by")
        if not self.requires_reconsent and self.reconsent_by is not None:
            raise ValueError("reconsent_by is only for a version that requires re-consent")
        return self

    def body(self) -> DocumentBody:
        return DocumentBody.model_validate(
            self.model_dump(include={"format", "title", "sections", "scopes", "questions"})
        )


ALL_SITES = "*"


def site_key(site_id: str | None) -> str:
    return ALL_SITES if site_id is None else site_id


def grade(body: DocumentBody, answers: dict[str, int]) -> tuple[list[str], list[str]]:
    """(question ids answered wrongly or not at all, the sections to show again)."""
    wrong = [q.id for q in body.questions if answers.get(q.id) != q.answer]
    sections = [q.section for q in body.questions if q.id in wrong]
    return wrong, list(dict.fromkeys(sections))


def overdue(reconsent_by: date | None, today: date) -> bool:
    return reconsent_by is not None and today > reconsent_by

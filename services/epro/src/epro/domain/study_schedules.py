"""A study's questionnaire schedules, as ePRO can run them. Pure.

The study file declares each schedule's rule as a plain mapping (trialstream.studies
checks only its `kind`); ePRO reads it with its own `Schedule` model here. A schedule
that ePRO cannot run - its rule does not fit, or its questionnaire version is not
published here - is skipped with a reason, so that one bad entry neither crashes the
participants consumer nor keeps the study's other schedules from its participants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError
from trialstream.studies import QuestionnaireSchedule, field_problems

from epro.domain.schedules import Schedule

SkipCode = Literal["rule_does_not_fit", "questionnaire_not_published"]


@dataclass(frozen=True)
class Skipped:
    schedule_id: str
    questionnaire_id: str
    questionnaire_version: int
    code: SkipCode
    reason: str


@dataclass(frozen=True)
class StudySchedules:
    """What ePRO assigns to a study's participants, and what it leaves out and why."""

    schedules: tuple[Schedule, ...]
    skipped: tuple[Skipped, ...] = ()

    def waits_for_a_questionnaire(self) -> bool:
        """A skip that publishing a questionnaire version would lift."""
        return any(s.code == "questionnaire_not_published" for s in self.skipped)


def study_schedules(
    declared: Sequence[QuestionnaireSchedule], published: Callable[[str, int], bool]
) -> StudySchedules:
    """The declared schedules ePRO can run; `published(id, version)` says whether that
    questionnaire version is published here."""
    schedules: list[Schedule] = []
    skipped: list[Skipped] = []
    for q in declared:

        def skip(code: SkipCode, reason: str, q: QuestionnaireSchedule = q) -> None:
            skipped.append(
                Skipped(q.schedule_id, q.questionnaire_id, q.questionnaire_version, code, reason)
            )

        try:
            schedule = Schedule.model_validate(q.model_dump(mode="json"))
        except ValidationError as exc:
            skip("rule_does_not_fit", "; ".join(field_problems(exc)))
            continue
        if not published(q.questionnaire_id, q.questionnaire_version):
            skip(
                "questionnaire_not_published",
                f"{q.questionnaire_id} v{q.questionnaire_version} is not published in ePRO",
            )
            continue
        schedules.append(schedule)
    return StudySchedules(tuple(schedules), tuple(skipped))

"""A study's questionnaire schedules as ePRO runs them: the ones that fit, and the ones it
skips with a reason."""

from __future__ import annotations

from datetime import time
from typing import Any

from epro.domain.schedules import Daily, Weekly
from epro.domain.study_schedules import study_schedules
from trialstream.studies import QuestionnaireSchedule

PUBLISHED = {("gad-7", 1), ("pain-nrs", 1)}


def declared(
    schedule_id: str, questionnaire: str, version: int, **rule: Any
) -> QuestionnaireSchedule:
    return QuestionnaireSchedule(
        schedule_id=schedule_id,
        questionnaire_id=questionnaire,
        questionnaire_version=version,
        rule=rule,
    )


def published(questionnaire_id: str, version: int) -> bool:
    return (questionnaire_id, version) in PUBLISHED


def test_a_fitting_schedule_is_read_with_epros_own_rule_model() -> None:
    found = study_schedules(
        [declared("gad-weekly", "gad-7", 1, kind="weekly", weekday=2, at="09:30")], published
    )
    assert not found.skipped
    (schedule,) = found.schedules
    assert schedule.schedule_id == "gad-weekly"
    assert schedule.rule == Weekly(weekday=2, at=time(9, 30))


def test_a_rule_that_does_not_fit_is_skipped_with_the_reason_and_the_others_kept() -> None:
    found = study_schedules(
        [
            declared("diary", "pain-nrs", 1, kind="daily", at="20:00", every="other day"),
            declared("gad-weekly", "gad-7", 1, kind="weekly"),  # no weekday
            declared("pain", "pain-nrs", 1, kind="daily", window_minutes=60),
        ],
        published,
    )
    assert [s.schedule_id for s in found.schedules] == ["pain"]
    assert found.schedules[0].rule == Daily(window_minutes=60)
    assert [(s.schedule_id, s.code) for s in found.skipped] == [
        ("diary", "rule_does_not_fit"),
        ("gad-weekly", "rule_does_not_fit"),
    ]
    assert "every" in found.skipped[0].reason
    assert "weekday" in found.skipped[1].reason
    assert not found.waits_for_a_questionnaire()


def test_a_questionnaire_version_not_published_here_is_skipped_until_it_is() -> None:
    schedules = [declared("gad-v2", "gad-7", 2, kind="daily")]
    found = study_schedules(schedules, published)
    assert found.schedules == ()
    (skipped,) = found.skipped
    assert (skipped.code, skipped.questionnaire_id, skipped.questionnaire_version) == (
        "questionnaire_not_published",
        "gad-7",
        2,
    )
    assert skipped.reason == "gad-7 v2 is not published in ePRO"
    assert found.waits_for_a_questionnaire()
    assert [s.schedule_id for s in study_schedules(schedules, lambda q, v: True).schedules] == [
        "gad-v2"
    ]

"""Which visits a participant is planned from, and which clock their site keeps: a declared
study's file, or (the default study) TELEHEALTH_PROTOCOL and the admin-set timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from telehealth.domain.study import Plan, study_site_timezone
from telehealth.domain.windows import DEFAULT_PROTOCOL, ProtocolVisit, plan_schedule, zone
from trialstream.events.visits import VisitType
from trialstream.studies import StudyDefinition

SETTINGS_PROTOCOL = [ProtocolVisit(name="Screening", day=1)]


def study(**declared: Any) -> StudyDefinition:
    return StudyDefinition.model_validate(
        {
            "study_id": "cardio-1",
            "title": "Cardio",
            "sponsor": "Acme",
            "sites": [{"id": "site-ny", "timezone": "America/New_York"}],
            "modules": ["telehealth"],
            **declared,
        }
    )


def test_a_declared_study_plans_its_own_visits_not_the_settings() -> None:
    plan = Plan.of_study(
        "cardio-1",
        study(
            visits=[
                {"name": "Week 2", "day": 14, "minus_days": 2, "plus_days": 3, "type": "home"},
                {"name": "Baseline", "day": 1, "type": "site"},
            ]
        ),
    )
    protocol = plan.protocol(SETTINGS_PROTOCOL)
    assert [(v.name, v.day, v.minus_days, v.plus_days, v.type) for v in protocol] == [
        ("Week 2", 14, 2, 3, VisitType.HOME),
        ("Baseline", 1, 0, 0, VisitType.SITE),
    ]
    planned = plan_schedule(date(2030, 1, 7), protocol, zone("America/New_York"))
    assert [(p.name, p.sequence) for p in planned] == [("Baseline", 1), ("Week 2", 2)]
    # Day 14 - 2 = 18 Jan, local midnight in New York (EST, UTC-5)
    assert planned[1].window_start == datetime(2030, 1, 18, 5, tzinfo=UTC)
    assert plan.described() == {"source": "study", "note": None}


def test_the_default_study_is_planned_from_the_settings() -> None:
    plan = Plan.of_study("default", None)
    assert plan.protocol(DEFAULT_PROTOCOL) == list(DEFAULT_PROTOCOL)
    assert plan.stored() is None
    assert plan.described() == {"source": "settings", "note": None}


def test_a_study_without_visits_plans_none_and_says_so() -> None:
    plan = Plan.of_study("cardio-1", study())
    assert plan.protocol(SETTINGS_PROTOCOL) == []
    described = plan.described()
    assert described["source"] == "study"
    assert described["note"] is not None
    assert "declares no visits" in described["note"]


def test_the_stored_plan_is_the_one_made_at_enrolment() -> None:
    at_enrolment = Plan.of_study("cardio-1", study(visits=[{"name": "V1", "day": 3}]))
    stored = at_enrolment.stored()
    assert stored is not None
    # a later version of the study file does not reach the stored plan
    assert Plan.from_stored("cardio-1", stored) == at_enrolment
    assert Plan.from_stored("cardio-1", Plan.of_study("cardio-1", study()).stored()).visits == ()
    assert Plan.from_stored("default", None).visits is None


def test_a_declared_site_keeps_the_study_files_clock() -> None:
    assert study_site_timezone(study(), "site-ny") == "America/New_York"
    assert study_site_timezone(study(), "site-elsewhere") is None
    assert study_site_timezone(None, "site-ny") is None  # default study: the admin route's

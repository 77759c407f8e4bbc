"""A participant's rules from their study's `retention` block and their own choices: quiet
hours, daily cap and the language a nudge goes out in; the default study as before."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any
from uuid import uuid4

from retention.domain import Outcome, SuppressReason, Trigger, TriggerKind, decide
from retention.study_rules import Chosen, effective_rules, study_language
from trialstream.studies import StudyDefinition


def study(**retention: Any) -> StudyDefinition:
    return StudyDefinition.model_validate(
        {
            "study_id": "cardio-2",
            "title": "Cardio 2",
            "sponsor": "Acme",
            "sites": [
                {"id": "site-lyon", "timezone": "Europe/Paris", "languages": ["fr", "en"]},
                {"id": "site-madrid", "timezone": "Europe/Madrid", "languages": ["es"]},
            ],
            "modules": ["retention"],
            "retention": {
                "languages": ["de", "fr", "pt"],
                "quiet_start": "22:00",
                "quiet_end": "07:00",
                "max_per_day": 2,
                **retention,
            },
        }
    )


def test_a_study_participant_with_no_choices_gets_the_studys_quiet_hours_and_cap() -> None:
    rules = effective_rules(Chosen(), "cardio-2", study(), "site-lyon", cap=5)
    prefs = rules.prefs
    assert (prefs.quiet_start, prefs.quiet_end, prefs.max_per_day) == (time(22), time(7), 2)
    assert "quiet 22:00-07:00 (study's)" in rules.source
    assert "cap 2/day (study's)" in rules.source


def test_the_participants_own_quiet_hours_win_and_their_cap_only_if_smaller() -> None:
    own = Chosen(quiet_start=time(20), quiet_end=time(9), max_per_day=1)
    prefs = effective_rules(own, "cardio-2", study(), "site-lyon", cap=5).prefs
    assert (prefs.quiet_start, prefs.quiet_end, prefs.max_per_day) == (time(20), time(9), 1)

    looser = Chosen(max_per_day=10)
    rules = effective_rules(looser, "cardio-2", study(), "site-lyon", cap=5)
    assert rules.prefs.max_per_day == 2
    assert "cap 2/day (study's)" in rules.source


def test_the_default_study_keeps_the_service_cap_and_21_to_8() -> None:
    rules = effective_rules(Chosen(timezone="Asia/Tokyo"), "default", None, "site-a", cap=4)
    prefs = rules.prefs
    assert (prefs.quiet_start, prefs.quiet_end, prefs.max_per_day) == (time(21), time(8), 4)
    assert (prefs.language, prefs.timezone, rules.source) == ("en", "Asia/Tokyo", "")
    # a preference may raise the cap there, as it always could
    own = Chosen(language="es-MX", max_per_day=9)
    assert effective_rules(own, "default", None, None, cap=4).prefs.max_per_day == 9
    assert effective_rules(own, "default", None, None, cap=4).prefs.language == "es-MX"


def test_a_study_not_read_yet_falls_back_to_the_service_rules_and_says_so() -> None:
    rules = effective_rules(Chosen(), "cardio-2", None, "site-lyon", cap=4)
    assert rules.prefs.max_per_day == 4
    assert rules.prefs.quiet_start == time(21)
    assert rules.source == "study cardio-2 not read yet: service rules"


def test_language_is_the_participants_if_the_study_lists_it_or_its_base() -> None:
    assert study_language("fr", study(), "site-madrid")[0] == "fr"
    assert study_language("PT-br", study(), "site-madrid")[0] == "pt"
    assert study_language("de-AT", study(), None)[0] == "de"


def test_language_not_listed_falls_to_the_sites_first_then_the_studys_first() -> None:
    language, why = study_language("it", study(), "site-madrid")
    assert language == "es"
    assert (
        why == "first language of site site-madrid (participant's it not in the study's de, fr, pt)"
    )
    language, why = study_language(None, study(), "site-elsewhere")
    assert language == "de"
    assert why.startswith("study's first retention language (no participant language")


def test_the_study_cap_and_quiet_hours_reach_the_decision() -> None:
    at = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 22:30 in Paris: quiet for the study only
    trigger = Trigger(TriggerKind.EPRO_DUE, "P-1", uuid4(), key="epro-due", at=at)
    paris = Chosen(timezone="Europe/Paris")
    prefs = effective_rules(paris, "cardio-2", study(), "site-lyon", cap=5).prefs
    d = decide(trigger, prefs, [], at)
    assert d.outcome is Outcome.SEND
    assert d.send_at == datetime(2026, 6, 2, 5, 0, tzinfo=UTC)  # 07:00 Paris
    assert d.language == "fr"  # site-lyon's first language

    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    two_sent = [noon.replace(hour=7), noon.replace(hour=8)]
    capped = decide(replace(trigger, at=noon), prefs, two_sent, noon)
    assert capped.reason is SuppressReason.FREQUENCY_CAP
    service_rules = effective_rules(paris, "default", None, "site-lyon", cap=5).prefs
    assert decide(replace(trigger, at=noon), service_rules, two_sent, noon).outcome is Outcome.SEND

"""What the gating services share (trialstream.consent_gate) and ingest's per-reading
rule, pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from ingest.domain import Status, Uploader, check_batch
from trialstream import consent_gate
from trialstream.events.consents import ConsentScope, ConsentState, ScopeConsent
from trialstream.studies import StudyDefinition, StudyRegistry

NOW = datetime.now(UTC)


def registry() -> StudyRegistry:
    studies = StudyRegistry()
    for study_id, modules in (("WITH", ["ingest", "consent"]), ("WITHOUT", ["ingest"])):
        studies.apply(
            1,
            StudyDefinition.model_validate(
                {
                    "study_id": study_id,
                    "title": "t",
                    "sponsor": "s",
                    "sites": [{"id": "site-a", "timezone": "UTC"}],
                    "modules": modules,
                }
            ),
        )
    return studies


def test_only_studies_that_enable_the_consent_module_are_gated() -> None:
    studies = registry()
    assert consent_gate.gated(studies, "WITH")
    assert not consent_gate.gated(studies, "WITHOUT")
    assert not consent_gate.gated(studies, "default")  # every module, but predates consent
    assert not consent_gate.gated(studies, "NOT-ANNOUNCED")


def state(revision: int) -> ConsentState:
    return ConsentState(participant_id="P-1", site_id="site-a", revision=revision, change="signed")


def test_a_batch_keeps_the_highest_revision_per_participant() -> None:
    kept = consent_gate.latest([state(2), state(3), state(1)])
    assert [s.revision for s in kept] == [3]


def test_the_refusal_names_the_scope() -> None:
    refused = consent_gate.consent_required(ConsentScope.WEARABLE)
    assert (refused.kind, refused.code) == (403, "consent_required")
    assert refused.details[0]["scope"] == "wearable"


def reading(measured_at: datetime) -> dict[str, object]:
    return {
        "event_id": str(__import__("uuid").uuid4()),
        "participant_id": "P-1",
        "device_id": "dev-1",
        "metric": "heart-rate",
        "value": 70,
        "unit": "beats/min",
        "measured_at": measured_at.isoformat(),
    }


def test_ingest_refuses_readings_measured_before_consent_or_after_its_withdrawal() -> None:
    consent = ScopeConsent(
        scope=ConsentScope.WEARABLE, since=NOW - timedelta(hours=2), until=NOW - timedelta(hours=1)
    )
    who = Uploader("dev-1", "P-1", consented_from=consent.since, consent_until=consent.until)
    records = [
        reading(NOW - timedelta(hours=3)),
        reading(NOW - timedelta(minutes=90)),
        reading(NOW - timedelta(minutes=30)),
    ]
    checked = check_batch(records, who, received_at=NOW, max_clock_skew=timedelta(minutes=5))
    assert [r.status for r in checked.results] == [
        Status.REJECTED,
        Status.ACCEPTED,
        Status.REJECTED,
    ]
    assert checked.results[0].errors[0]["code"] == "before_consent"
    assert checked.results[2].errors[0]["code"] == "consent_withdrawn"


def test_a_study_pauses_after_a_missed_deadline_only_where_its_file_says_so() -> None:
    studies = registry()
    base = {"title": "t", "sponsor": "s", "sites": [{"id": "site-a", "timezone": "UTC"}]}
    for study_id, rules in (("PAUSE", {"after_reconsent_deadline": "pause"}), ("GO", {})):
        studies.apply(
            1,
            StudyDefinition.model_validate(
                {**base, "study_id": study_id, "modules": ["consent"], "consent": rules}
            ),
        )
    assert consent_gate.pauses(studies, "PAUSE")
    assert not consent_gate.pauses(studies, "GO")  # the default: continue
    assert not consent_gate.pauses(studies, "WITH")  # no consent block at all
    assert not consent_gate.pauses(studies, "NOT-ANNOUNCED")


def test_a_wrong_rule_is_a_field_level_error() -> None:
    with pytest.raises(ValueError, match=r"consent\.after_reconsent_deadline"):
        StudyDefinition.model_validate(
            {
                "study_id": "S",
                "title": "t",
                "sponsor": "s",
                "sites": [{"id": "site-a", "timezone": "UTC"}],
                "modules": ["consent"],
                "consent": {"after_reconsent_deadline": "stop"},
            }
        )


def test_the_pause_starts_when_the_deadline_day_ends_in_utc() -> None:
    consent = ScopeConsent(scope=ConsentScope.WEARABLE, since=NOW - timedelta(days=30))
    due = consent_gate.Standing(consent, reconsent_version=2, reconsent_by=date(2026, 11, 30))
    assert due.paused_from(True) == datetime(2026, 12, 1, tzinfo=UTC)
    assert due.paused_from(False) is None  # a study that continues
    assert consent_gate.Standing(consent).paused_from(True) is None  # nothing asked


def test_ingest_refuses_readings_measured_once_the_pause_began() -> None:
    paused = NOW - timedelta(minutes=30)
    who = Uploader("dev-1", "P-1", consented_from=NOW - timedelta(days=30), paused_from=paused)
    records = [reading(paused - timedelta(seconds=1)), reading(paused)]
    checked = check_batch(records, who, received_at=NOW, max_clock_skew=timedelta(minutes=5))
    assert [r.status for r in checked.results] == [Status.ACCEPTED, Status.REJECTED]
    [error] = checked.results[1].errors
    assert (error["field"], error["code"]) == ("measured_at", "reconsent_overdue")

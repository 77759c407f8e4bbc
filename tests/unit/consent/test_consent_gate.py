"""What the gating services share (trialstream.consent_gate) and ingest's per-reading
rule, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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

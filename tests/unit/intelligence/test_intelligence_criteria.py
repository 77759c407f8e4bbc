"""Criteria evaluation: each kind of rule, exclusions, missing data, and the columnar
evaluation agreeing with a plain one-candidate-at-a-time reading of the rules."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from intelligence.domain import matching
from intelligence.domain.fhir import Candidate, Measurement, minimise
from intelligence.domain.units import factor
from intelligence.service import parse_bundles
from trialstream.eligibility import Eligibility

from benchmarks.intelligence.bundles import bundle, studies

ICD, LOINC, RX = (
    "http://hl7.org/fhir/sid/icd-10",
    "http://loinc.org",
    "http://www.nlm.nih.gov/research/umls/rxnorm",
)
CRITERIA = Eligibility.model_validate(
    {
        "version": 3,
        "criteria": [
            {"id": "adult", "kind": "age", "min": 18, "max": 90, "text": "Aged 18 to 90"},
            {"id": "women", "kind": "sex", "sexes": ["female"], "text": "Women"},
            {"id": "hf", "kind": "diagnosis", "text": "Heart failure",
             "codes": [{"system": ICD, "code": "I50"}]},
            {"id": "bnp", "kind": "lab", "text": "NT-proBNP >= 400 pg/mL in 90 days",
             "codes": [{"system": LOINC, "code": "33762-6"}], "unit": "pg/mL", "min": 400,
             "within_days": 90},
            {"id": "no-warfarin", "kind": "medication", "exclusion": True, "text": "No warfarin",
             "codes": [{"system": RX, "code": "11289"}]},
        ],
    }
)  # fmt: skip


def candidate(**changes: Any) -> Candidate:
    base: dict[str, Any] = {
        "candidate_id": "C1",
        "as_of": date(2026, 11, 1),
        "age": 64,
        "sex": "female",
        "conditions": [{"system": ICD, "code": "I50.9", "active": True}],
        "observations": [
            {"system": LOINC, "code": "33762-6", "value": 900, "unit": "pg/mL", "days_before": 10}
        ],
        "medications": [{"system": RX, "code": "6809", "active": True}],
        "has_conditions": True,
        "has_medications": True,
    }
    return Candidate.model_validate({**base, **changes})


def decide(*candidates: Candidate) -> list[matching.Decision]:
    return matching.decisions(matching.evaluate(list(candidates), [("S", CRITERIA)]))


def outcomes(d: matching.Decision) -> dict[str, str]:
    return {str(c["id"]): str(c["outcome"]) for c in d.explanation}


def test_a_candidate_meeting_every_criterion_is_eligible_under_the_version() -> None:
    (d,) = decide(candidate())
    assert (d.decision, d.criteria_version) == ("eligible", 3)
    assert set(outcomes(d).values()) == {"pass"}


def test_a_child_code_meets_a_diagnosis_criterion_and_a_resolved_one_does_not() -> None:
    resolved = candidate(conditions=[{"system": ICD, "code": "I50.9", "active": False}])
    other_system = candidate(conditions=[{"system": "urn:other", "code": "I50", "active": True}])
    assert [outcomes(d)["hf"] for d in decide(resolved, other_system)] == ["fail", "fail"]


def test_each_failed_criterion_is_named() -> None:
    (d,) = decide(
        candidate(age=17, sex="male", medications=[{"system": RX, "code": "11289", "active": True}])
    )
    assert d.decision == "ineligible"
    failed = {k for k, v in outcomes(d).items() if v == "fail"}
    assert failed == {"adult", "women", "no-warfarin"}


def test_missing_data_needs_review_and_names_what_is_missing() -> None:
    (d,) = decide(candidate(age=None, observations=[], has_medications=False, medications=[]))
    assert d.decision == "needs_review"
    missing = {str(c["id"]): c.get("missing") for c in d.explanation if c["outcome"] == "unknown"}
    assert set(missing) == {"adult", "bnp", "no-warfarin"}
    assert "pg/mL" in str(missing["bnp"])
    assert "90 days" in str(missing["bnp"])


@pytest.mark.parametrize(
    ("observation", "outcome"),
    [
        ({"value": 399, "unit": "pg/mL", "days_before": 10}, "fail"),
        ({"value": 400, "unit": "pg/mL", "days_before": 90}, "pass"),
        ({"value": 900, "unit": "pg/mL", "days_before": 91}, "unknown"),  # outside the window
        ({"value": 900, "unit": "ng/L", "days_before": 10}, "unknown"),  # another unit
        ({"value": 900, "unit": "pg/mL", "days_before": -3}, "unknown"),  # after the record
    ],
)
def test_a_lab_criterion_reads_the_value_its_window_and_its_unit(
    observation: dict[str, Any], outcome: str
) -> None:
    (d,) = decide(candidate(observations=[{"system": LOINC, "code": "33762-6", **observation}]))
    assert outcomes(d)["bnp"] == outcome


def test_the_latest_result_in_the_window_counts() -> None:
    old_high = {
        "system": LOINC,
        "code": "33762-6",
        "value": 900,
        "unit": "pg/mL",
        "days_before": 60,
    }
    new_low = {"system": LOINC, "code": "33762-6", "value": 100, "unit": "pg/mL", "days_before": 5}
    (d,) = decide(candidate(observations=[old_high, new_low]))
    assert outcomes(d)["bnp"] == "fail"


def latest_key(o: Measurement) -> tuple[str, str, str]:
    return o.system, o.code, o.unit or ""


def reference(c: Candidate, eligibility: Eligibility) -> str:
    """The rules read one candidate at a time, plainly: what the columns must agree with."""
    results = []
    for r in eligibility.criteria:
        if r.kind == "age":
            got = None if c.age is None else (r.min or -1e9) <= c.age <= (r.max or 1e9)
        elif r.kind == "sex":
            got = None if c.sex is None else c.sex in r.sexes
        elif r.kind in ("diagnosis", "medication"):
            items = c.conditions if r.kind == "diagnosis" else c.medications
            has = c.has_conditions if r.kind == "diagnosis" else c.has_medications
            hit = any(
                i.active and i.system == k.system and i.code.startswith(k.code)
                if r.kind == "diagnosis"
                else i.active and (i.system, i.code) == (k.system, k.code)
                for i in items
                for k in r.codes
            )
            got = True if hit else (False if has else None)
        else:
            codes = {(k.system, k.code) for k in r.codes}
            dated = [
                o for o in c.observations
                if (o.system, o.code) in codes and o.days_before is not None and o.days_before >= 0
            ]  # fmt: skip
            latest = min(dated, key=lambda o: o.days_before or 0, default=None)
            scale = None if latest is None else factor(*latest_key(latest), r.unit)
            if latest is None or scale is None or (latest.days_before or 0) > r.within_days:
                got = None
            else:
                value = latest.value * scale
                got = (r.min is None or value >= r.min) and (r.max is None or value <= r.max)
        if got is not None and r.exclusion:
            got = not got
        results.append(got)
    if False in results:
        return "ineligible"
    return "needs_review" if None in results else "eligible"


def test_the_columnar_evaluation_agrees_with_the_rules_read_one_by_one() -> None:
    rng = np.random.default_rng(7)
    docs = [bundle(rng, i) for i in range(400)]
    records = [minimise(b, date(2026, 11, 1)) for b in parse_bundles(docs, "lines")]
    targets = studies(6, seed=3)
    made = matching.decisions(matching.evaluate(records, targets))
    expected = [reference(c, e) for _, e in targets for c in records]
    assert [d.decision for d in made] == expected
    assert len({d.decision for d in made}) == 3  # the sample reaches every outcome


def test_explanations_re_made_from_stored_outcome_codes_equal_those_made_at_upload() -> None:
    rng = np.random.default_rng(11)
    records = [minimise(b, date(2026, 11, 1)) for b in parse_bundles(
        [bundle(rng, i) for i in range(200)], "lines"
    )]  # fmt: skip
    targets = studies(4, seed=5)
    batch = matching.evaluate(records, targets)
    explained, stored = matching.decisions(batch), matching.decisions(batch, explain=False)
    assert [d.outcomes for d in explained] == [d.outcomes for d in stored]
    assert all(d.explanation == [] for d in stored)
    for study_id, eligibility in targets:
        mine = [d for d in explained if d.study_id == study_id]
        assert all(len(d.outcomes) == len(eligibility.criteria) for d in mine)
        remade = matching.explain_stored(records, eligibility, [d.outcomes for d in mine])
        assert remade == [d.explanation for d in mine]

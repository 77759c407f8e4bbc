"""Lab results in another unit than the criterion's: converted by the table per LOINC
code (mg/dL <-> mmol/L for glucose and cholesterol, mg/dL <-> umol/L for creatinine,
g/dL <-> g/L for haemoglobin); a unit the table does not know still needs review."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from intelligence.domain import matching
from intelligence.domain.fhir import Candidate
from intelligence.domain.units import TABLE, factor
from trialstream.eligibility import Eligibility

LOINC = "http://loinc.org"


def criteria(code: str, unit: str, lo: float | None, hi: float | None) -> Eligibility:
    return Eligibility.model_validate(
        {
            "version": 1,
            "criteria": [
                {"id": "lab", "kind": "lab", "text": f"{code} in range", "unit": unit,
                 "codes": [{"system": LOINC, "code": code}], "min": lo, "max": hi},
            ],
        }
    )  # fmt: skip


def candidate(code: str, value: float, unit: str | None, system: str = LOINC) -> Candidate:
    return Candidate.model_validate(
        {
            "candidate_id": "C1",
            "as_of": date(2026, 11, 1),
            "observations": [
                {"system": system, "code": code, "value": value, "unit": unit, "days_before": 3}
            ],
        }
    )


def outcome(e: Eligibility, c: Candidate) -> tuple[str, dict[str, Any]]:
    (d,) = matching.decisions(matching.evaluate([c], [("S", e)]))
    return str(d.explanation[0]["outcome"]), d.explanation[0]


@pytest.mark.parametrize(
    ("code", "unit", "lo", "hi", "value", "given", "expected"),
    [
        # fasting glucose 70-125 mg/dL; 5.0 mmol/L = 90.1 mg/dL, 7.5 mmol/L = 135.1 mg/dL
        ("2345-7", "mg/dL", 70, 125, 5.0, "mmol/L", "pass"),
        ("2345-7", "mg/dL", 70, 125, 7.5, "mmol/L", "fail"),
        ("2345-7", "mmol/L", 3.9, 6.9, 100, "mg/dL", "pass"),  # 5.55 mmol/L
        # creatinine <= 1.5 mg/dL; 120 umol/L = 1.36 mg/dL, 140 umol/L = 1.58 mg/dL
        ("2160-0", "mg/dL", None, 1.5, 120, "umol/L", "pass"),
        ("2160-0", "mg/dL", None, 1.5, 140, "umol/L", "fail"),
        ("2160-0", "umol/L", None, 133, 1.6, "mg/dL", "fail"),  # 141.5 umol/L
        # total cholesterol < 240 mg/dL; 5.2 mmol/L = 201 mg/dL, 6.5 mmol/L = 251 mg/dL
        ("2093-3", "mg/dL", None, 240, 5.2, "mmol/L", "pass"),
        ("2093-3", "mg/dL", None, 240, 6.5, "mmol/L", "fail"),
        # haemoglobin >= 10 g/dL; 95 g/L = 9.5 g/dL, 121 g/L = 12.1 g/dL
        ("718-7", "g/dL", 10, None, 95, "g/L", "fail"),
        ("718-7", "g/dL", 10, None, 121, "g/L", "pass"),
        ("718-7", "g/L", 100, None, 12.1, "g/dL", "pass"),
        # not convertible: a unit the code's row does not name, a code not in the table,
        # no unit at all
        ("718-7", "g/dL", 10, None, 7.5, "mmol/L", "unknown"),
        ("33762-6", "pg/mL", 400, None, 900, "ng/L", "unknown"),
        ("2345-7", "mg/dL", 70, 125, 100, None, "unknown"),
    ],
)
def test_a_result_in_another_unit_is_converted_or_needs_review(
    code: str, unit: str, lo: float | None, hi: float | None, value: float, given: str | None,
    expected: str,
) -> None:  # fmt: skip
    got, explained = outcome(criteria(code, unit, lo, hi), candidate(code, value, given))
    assert got == expected
    if expected == "unknown":
        assert "convertible" in str(explained["missing"])


def test_the_margin_is_in_the_criterions_unit() -> None:
    # 5.0 mmol/L = 90.08 mg/dL: (90.08 - 70) / 70 from the lower limit, (125 - 90.08) / 125
    _, explained = outcome(criteria("2345-7", "mg/dL", 70, 125), candidate("2345-7", 5.0, "mmol/L"))
    assert explained["margin"] == pytest.approx(
        min((90.08 - 70) / 70, (125 - 90.08) / 125), abs=1e-3
    )


def test_another_coding_system_with_the_same_code_is_not_converted() -> None:
    e = criteria("2345-7", "mg/dL", 70, 125)
    got, _ = outcome(e, candidate("2345-7", 5.0, "mmol/L", system="urn:local"))
    assert got == "unknown"  # the criterion names LOINC's code; a local one is not it


def test_the_factors_are_the_textbook_ones_and_go_both_ways() -> None:
    assert factor(LOINC, "2345-7", "mmol/L", "mg/dL") == pytest.approx(18.016)
    assert factor(LOINC, "2160-0", "mg/dL", "umol/L") == pytest.approx(88.42)
    assert factor(LOINC, "2093-3", "mmol/L", "mg/dL") == pytest.approx(38.665)
    assert factor(LOINC, "718-7", "g/dL", "g/L") == pytest.approx(10.0)
    assert factor(LOINC, "33762-6", "ng/L", "pg/mL") is None  # not in the table (yet)
    assert factor("urn:x", "x", "mg/dL", "mg/dL") == 1.0
    for code, (_, units) in TABLE.items():
        for a in units:
            for b in units:
                there, back = factor(LOINC, code, a, b), factor(LOINC, code, b, a)
                assert there is not None
                assert back is not None
                assert there * back == pytest.approx(1.0)


def test_a_batch_in_mixed_units_agrees_with_converting_each_value_by_hand() -> None:
    rng = np.random.default_rng(5)
    e = criteria("2345-7", "mg/dL", 70, 125)
    by_hand = {"mg/dL": 1.0, "mg/L": 0.1, "mmol/L": 180.16 / 10}
    batch, expected = [], []
    for i in range(300):
        unit = str(rng.choice(list(by_hand)))
        mg_dl = float(rng.normal(100, 25))
        value = round(mg_dl / by_hand[unit], 3)
        c = candidate("2345-7", value, unit).model_copy(update={"candidate_id": f"C{i}"})
        batch.append(c)
        converted = value * by_hand[unit]
        expected.append("eligible" if 70 <= converted <= 125 else "ineligible")
    made = matching.decisions(matching.evaluate(batch, [("S", e)]))
    assert [d.decision for d in made] == expected
    assert set(expected) == {"eligible", "ineligible"}

"""FHIR bundles at the edge: validated with field-level errors, identifying fields dropped."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pytest
from intelligence.domain.fhir import minimise
from intelligence.service import parse_bundles
from trialstream.errors import Refused

from benchmarks.intelligence.bundles import PSEUDONYM_SYSTEM, bundle


def example() -> dict[str, Any]:
    return bundle(np.random.default_rng(5), 42)


def test_identifying_fields_are_not_kept() -> None:
    doc = example()
    (parsed,) = parse_bundles([doc], "body")
    record = minimise(parsed, date(2026, 11, 1)).model_dump_json()
    patient = doc["entry"][0]["resource"]
    for identifying in (
        patient["name"][0]["family"],
        patient["telecom"][0]["value"],
        patient["address"][0]["line"][0],
        patient["identifier"][0]["value"],  # the medical record number
        patient["id"],
        patient["birthDate"],
    ):
        assert identifying not in record
    kept = json.loads(record)
    assert kept["candidate_id"] == "C0000042"
    assert kept["birth_year"] == int(patient["birthDate"][:4])


def test_age_is_whole_years_on_the_bundle_date() -> None:
    doc = example()
    doc["entry"][0]["resource"]["birthDate"] = "1960-11-02"
    (parsed,) = parse_bundles([doc], "body")
    assert minimise(parsed, date(2000, 1, 1)).age == 65  # bundle timestamp 2026-11-01
    doc["entry"][0]["resource"]["birthDate"] = "1960"
    (parsed,) = parse_bundles([doc], "body")
    assert minimise(parsed, date(2000, 1, 1)).age is None


def problems(doc: Any) -> list[str]:
    with pytest.raises(Refused) as refused:
        parse_bundles([doc, example()], "lines")
    assert refused.value.status == 422
    return [d["field"] + ": " + d["message"] for d in refused.value.details]


def test_a_bundle_without_a_pseudonym_is_refused_naming_why() -> None:
    doc = example()
    doc["entry"][0]["resource"]["identifier"] = [
        i for i in doc["entry"][0]["resource"]["identifier"] if i["system"] != PSEUDONYM_SYSTEM
    ]
    (problem,) = problems(doc)
    assert problem.startswith("lines[0]")
    assert PSEUDONYM_SYSTEM in problem


def test_bad_fields_are_named_with_their_path_and_values_are_not_echoed() -> None:
    doc = example()
    doc["entry"].append({"resource": {"resourceType": "Observation", "status": "final",
                                      "code": {"coding": []},
                                      "valueQuantity": {"value": "Jane Doe"}}})  # fmt: skip
    doc["entry"].append({"resource": {"resourceType": "Encounter"}})
    found = problems(doc)
    n = len(doc["entry"])
    assert any(
        p.startswith(f"lines[0].entry.{n - 2}.resource.Observation.valueQuantity.value")
        for p in found
    )
    assert any(p.startswith(f"lines[0].entry.{n - 1}.resource") for p in found)
    assert not any("Jane Doe" in p for p in found)


def test_two_patients_in_one_bundle_are_refused() -> None:
    doc = example()
    doc["entry"].append(doc["entry"][0])
    assert "exactly one Patient" in problems(doc)[0]

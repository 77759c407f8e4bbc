"""Seeded synthetic candidates as FHIR R4 Bundles (with the identifying fields a real
export carries, so the edge's dropping of them is exercised), and synthetic studies'
criteria drawn from the same code pools."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
from trialstream.eligibility import Eligibility

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PSEUDONYM_SYSTEM = "urn:trialstream:pseudonym"
DIAGNOSES = [
    "I50", "I50.9", "I21", "I10", "E11", "E11.9", "J44", "J45", "N18", "N18.3", "C50", "C34",
    "G47.33", "F32", "M05", "K50", "I48", "E66", "G20", "G35",
]  # fmt: skip
# (LOINC code, UCUM unit, typical value, spread)
LABS = [
    ("33762-6", "pg/mL", 600.0, 500.0), ("62238-1", "mL/min/{1.73_m2}", 60.0, 25.0),
    ("4548-4", "%", 6.5, 1.5), ("2093-3", "mg/dL", 190.0, 40.0), ("718-7", "g/dL", 13.5, 1.8),
    ("2160-0", "mg/dL", 1.1, 0.4), ("40443-4", "/min", 62.0, 12.0), ("1751-7", "g/dL", 4.0, 0.5),
    ("777-3", "10*3/uL", 250.0, 60.0), ("2951-2", "mmol/L", 140.0, 3.0),
]  # fmt: skip
MEDICATIONS = [
    "11289", "39993", "6809", "29046", "83367", "36567", "8640", "197361", "4603", "1191",
    "32968", "41493", "3443", "10582", "5640",
]  # fmt: skip


def bundle(rng: np.random.Generator, index: int, as_of: date = date(2026, 11, 1)) -> dict[str, Any]:
    """One candidate's records: a Patient (with a name, phone, address, a medical record
    number and the pseudonym), 0-6 conditions, 0-8 lab results, 0-3 medications."""
    born = as_of - timedelta(days=int(rng.integers(16 * 365, 92 * 365)))
    patient = {
        "resourceType": "Patient",
        "id": f"mrn-{index}",
        "identifier": [
            {"system": "http://hospital.example/mrn", "value": f"MRN{index:08d}"},
            {"system": PSEUDONYM_SYSTEM, "value": f"C{index:07d}"},
        ],
        "name": [{"family": f"Family{index}", "given": ["Given"]}],
        "telecom": [{"system": "phone", "value": f"+49 30 {index:07d}"}],
        "address": [{"line": [f"{index} Example Street"], "city": "Berlin"}],
        "gender": str(rng.choice(["female", "male", "male", "female", "unknown"])),
        "birthDate": born.isoformat(),
    }
    entries: list[dict[str, Any]] = [{"resource": patient}]
    for code in rng.choice(DIAGNOSES, size=int(rng.integers(0, 7)), replace=False):
        status = "resolved" if rng.random() < 0.1 else "active"
        entries.append(
            {
                "resource": {
                    "resourceType": "Condition",
                    "clinicalStatus": {"coding": [{"code": status}]},
                    "code": {"coding": [{"system": ICD10, "code": str(code)}]},
                }
            }
        )
    for j in rng.choice(len(LABS), size=int(rng.integers(0, 9)), replace=False):
        code, unit, typical, spread = LABS[int(j)]
        taken = as_of - timedelta(days=int(rng.integers(0, 240)))
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "valueQuantity": {
                        "value": round(float(max(0.0, rng.normal(typical, spread))), 2),
                        "unit": unit,
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                    "effectiveDateTime": taken.isoformat(),
                }
            }
        )
    for code in rng.choice(MEDICATIONS, size=int(rng.integers(0, 4)), replace=False):
        entries.append(
            {
                "resource": {
                    "resourceType": "MedicationStatement",
                    "status": str(rng.choice(["active", "active", "completed"])),
                    "medicationCodeableConcept": {
                        "coding": [{"system": RXNORM, "code": str(code)}]
                    },
                }
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": f"{as_of.isoformat()}T09:00:00Z",
        "entry": entries,
    }


def studies(count: int, seed: int) -> list[tuple[str, Eligibility]]:
    """`count` studies' criteria: an age range, a diagnosis, 1-2 labs, 1-2 exclusions."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(count):
        criteria: list[dict[str, Any]] = [
            {"id": "age", "kind": "age", "min": 18, "max": int(rng.integers(60, 90)), "text": "Age"}
        ]
        for k, code in enumerate(rng.choice(DIAGNOSES, size=1)):
            criteria.append(
                {"id": f"dx{k}", "kind": "diagnosis", "text": f"Diagnosis {code}",
                 "codes": [{"system": ICD10, "code": str(code)[:3]}]}
            )  # fmt: skip
        for k, j in enumerate(rng.choice(len(LABS), size=int(rng.integers(1, 3)), replace=False)):
            code, unit, typical, spread = LABS[int(j)]
            criteria.append(
                {"id": f"lab{k}", "kind": "lab", "text": f"Lab {code}", "unit": unit,
                 "codes": [{"system": LOINC, "code": code}], "within_days": 180,
                 "min": round(typical - 1.5 * spread, 2)}
            )  # fmt: skip
        criteria.append(
            {"id": "ex-med", "kind": "medication", "exclusion": True, "text": "Excluded drug",
             "codes": [{"system": RXNORM, "code": str(rng.choice(MEDICATIONS))}]}
        )  # fmt: skip
        criteria.append(
            {"id": "ex-dx", "kind": "diagnosis", "exclusion": True, "text": "Excluded diagnosis",
             "codes": [{"system": ICD10, "code": str(rng.choice(DIAGNOSES))}]}
        )  # fmt: skip
        if rng.random() < 0.3:
            criteria.append({"id": "sex", "kind": "sex", "sexes": ["female"], "text": "Women"})
        out.append(
            (f"BENCH-{s:02d}", Eligibility.model_validate({"version": 1, "criteria": criteria}))
        )
    return out

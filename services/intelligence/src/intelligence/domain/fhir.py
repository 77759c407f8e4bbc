"""Candidates as FHIR R4 Bundles, and the minimised record kept of them (decision 0083).

Only the fields pre-screening needs are read: the TypedDicts drop every other field, so a
Patient's name, telecom, address, photo, contacts, its logical id and every identifier
other than the pseudonymous one are never parsed, stored, logged or published. The
exact birth date becomes an age (at the bundle's date) and a birth year; clinical dates
become days before that date. What remains is `Candidate`, from which every decision is
re-made.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal, NotRequired

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from trialstream.events.base import ParticipantId
from typing_extensions import TypedDict

# The identifier system that carries the candidate's pseudonym (the participant id they
# are enrolled under if referred); identifiers of any other system are dropped.
PSEUDONYM_SYSTEM = "urn:trialstream:pseudonym"
PSEUDONYM = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{1,63}")  # trialstream's ParticipantId
FhirDate = Annotated[
    str,
    StringConstraints(
        pattern=r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
    ),
]
Short = Annotated[str, StringConstraints(max_length=200)]
INACTIVE_CONDITION = frozenset({"inactive", "remission", "resolved"})
NOT_A_FINDING = frozenset({"refuted", "entered-in-error"})
VOID_OBSERVATION = frozenset({"cancelled", "entered-in-error"})
CURRENT_MEDICATION = frozenset({"active", "intended", "on-hold"})


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# The bundle as read: TypedDicts (pydantic validates them into plain dicts, several times
# faster than into model instances; keys not named here are dropped as they are read).


class FCoding(TypedDict, total=False):
    system: Short | None
    code: Annotated[str, StringConstraints(max_length=64)] | None


class FConcept(TypedDict, total=False):
    coding: Annotated[list[FCoding], Field(max_length=20)]


class FIdentifier(TypedDict, total=False):
    system: Short | None
    value: Short | None


class FPatient(TypedDict):
    resourceType: Literal["Patient"]
    identifier: NotRequired[Annotated[list[FIdentifier], Field(max_length=20)]]
    gender: NotRequired[Literal["male", "female", "other", "unknown"] | None]
    birthDate: NotRequired[FhirDate | None]


class FCondition(TypedDict):
    resourceType: Literal["Condition"]
    code: FConcept
    clinicalStatus: NotRequired[FConcept | None]
    verificationStatus: NotRequired[FConcept | None]


class FQuantity(TypedDict):
    value: Annotated[float, Field(allow_inf_nan=False)]
    unit: NotRequired[Short | None]
    code: NotRequired[Short | None]  # UCUM, preferred over the display unit


class FObservation(TypedDict):
    resourceType: Literal["Observation"]
    status: Literal[
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown",
    ]  # fmt: skip
    code: FConcept
    valueQuantity: NotRequired[FQuantity | None]
    effectiveDateTime: NotRequired[FhirDate | None]


class FMedicationStatement(TypedDict):
    resourceType: Literal["MedicationStatement"]
    status: Literal[
        "active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
        "unknown", "not-taken",
    ]  # fmt: skip
    medicationCodeableConcept: NotRequired[FConcept | None]


Resource = Annotated[
    FPatient | FCondition | FObservation | FMedicationStatement,
    Field(discriminator="resourceType"),
]


class FEntry(TypedDict):
    resource: Resource


class Bundle(TypedDict):
    """A FHIR R4 Bundle of one candidate: exactly one Patient with a pseudonymous
    identifier (`problem`), and their Conditions, Observations and MedicationStatements."""

    resourceType: Literal["Bundle"]
    type: Literal["collection", "document", "searchset", "transaction", "batch", "message"]
    timestamp: NotRequired[AwareDatetime | None]
    entry: Annotated[list[FEntry], Field(min_length=1, max_length=2000)]


def _codes(concept: FConcept | None) -> list[tuple[str, str]]:
    if not concept:
        return []
    return [(c.get("system") or "", k) for c in concept.get("coding", ()) if (k := c.get("code"))]


def _has(concept: FConcept | None, values: frozenset[str]) -> bool:
    if not concept:
        return False
    return any(c.get("code") in values for c in concept.get("coding", ()))


def _patients(bundle: Bundle) -> list[FPatient]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]


def problem(bundle: Bundle) -> str | None:
    """What makes a validated bundle unusable, if anything."""
    patients = _patients(bundle)
    if len(patients) != 1:
        return f"a bundle holds exactly one Patient, not {len(patients)}"
    pseudonyms = [
        i for i in patients[0].get("identifier", ()) if i.get("system") == PSEUDONYM_SYSTEM
    ]
    if len(pseudonyms) != 1 or not PSEUDONYM.fullmatch(pseudonyms[0].get("value") or ""):
        return (
            f"the Patient needs exactly one identifier of system {PSEUDONYM_SYSTEM} "
            "whose value is a pseudonym (a letter, then letters, digits, '_', '.', '-')"
        )
    return None


class Coded(_In):
    system: str
    code: str
    active: bool


class Measurement(_In):
    system: str
    code: str
    value: float
    unit: str | None
    days_before: int | None  # before the record's date; None: no date given


class Candidate(_In):
    """The minimised record: all that is stored of a candidate, and enough to re-make
    every decision (with the criteria version it was made under)."""

    candidate_id: ParticipantId
    as_of: date
    age: int | None = None
    birth_year: int | None = None
    sex: Literal["female", "male", "other"] | None = None
    conditions: list[Coded] = Field(default_factory=list)
    observations: list[Measurement] = Field(default_factory=list)
    medications: list[Coded] = Field(default_factory=list)
    has_conditions: bool = False  # the record lists conditions at all
    has_medications: bool = False


_SEX: dict[str, Literal["female", "male", "other"]] = {
    "female": "female", "male": "male", "other": "other"
}  # fmt: skip


def parse_date(value: str) -> date:
    """A FHIR date or dateTime at its date; a partial one (2026, 2026-05) at its first day."""
    if len(value) >= 10:
        return date.fromisoformat(value[:10])
    if len(value) == 7:
        return date(int(value[:4]), int(value[5:7]), 1)
    return date(int(value[:4]), 1, 1)


def age_on(birth: str, on: date) -> int | None:
    """Whole years on `on`; None when only a year is known (its age is off by one)."""
    if len(birth) < 10:
        return None
    born = date.fromisoformat(birth[:10])
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def minimise(bundle: Bundle, received: date) -> Candidate:
    """The bundle with every identifying field dropped (module docstring); `problem` of
    it is None."""
    stamp = bundle.get("timestamp")
    as_of = stamp.date() if stamp is not None else received
    patient = _patients(bundle)[0]
    pseudonym = next(
        i.get("value") for i in patient.get("identifier", ()) if i.get("system") == PSEUDONYM_SYSTEM
    )
    conditions, observations, medications = [], [], []
    kinds = set()
    for entry in bundle["entry"]:
        r = entry["resource"]
        kind = r["resourceType"]
        kinds.add(kind)
        if r["resourceType"] == "Condition":
            if _has(r.get("verificationStatus"), NOT_A_FINDING):
                continue
            active = not _has(r.get("clinicalStatus"), INACTIVE_CONDITION)
            conditions += [
                Coded.model_construct(system=s, code=c, active=active) for s, c in _codes(r["code"])
            ]
        elif r["resourceType"] == "Observation":
            q = r.get("valueQuantity")
            if r["status"] in VOID_OBSERVATION or q is None:
                continue
            days = None
            effective = r.get("effectiveDateTime")
            if effective is not None:
                days = (as_of - parse_date(effective)).days
            unit = q.get("code") or q.get("unit")
            observations += [
                Measurement.model_construct(
                    system=s, code=c, value=q["value"], unit=unit, days_before=days
                )
                for s, c in _codes(r["code"])
            ]
        elif r["resourceType"] == "MedicationStatement":
            concept = r.get("medicationCodeableConcept")
            if r["status"] == "entered-in-error" or concept is None:
                continue
            active = r["status"] in CURRENT_MEDICATION
            medications += [
                Coded.model_construct(system=s, code=c, active=active) for s, c in _codes(concept)
            ]
    birth = patient.get("birthDate")
    # the values were validated as the bundle was parsed: constructed, not validated again
    # (a batch of 5,000 bundles makes some 100,000 of these)
    return Candidate.model_construct(
        candidate_id=str(pseudonym),  # `problem` made sure there is one
        as_of=as_of,
        age=None if birth is None else age_on(birth, as_of),
        birth_year=None if birth is None else int(birth[:4]),
        sex=_SEX.get(patient.get("gender") or ""),
        conditions=conditions,
        observations=observations,
        medications=medications,
        has_conditions="Condition" in kinds,
        has_medications="MedicationStatement" in kinds,
    )

"""Candidates as FHIR R4 Bundles, and the minimised record kept of them (decision 0083).

Only the fields pre-screening needs are read: the models ignore every other field, so a
Patient's name, telecom, address, photo, contacts, its logical id and every identifier
other than the pseudonymous one are never parsed, stored, logged or published. The
exact birth date becomes an age (at the bundle's date) and a birth year; clinical dates
become days before that date. What remains is `Candidate`, from which every decision is
re-made.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from trialstream.events.base import ParticipantId

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


class FCoding(_In):
    system: Short | None = None
    code: Annotated[str, StringConstraints(max_length=64)] | None = None


class FConcept(_In):
    coding: list[FCoding] = Field(default_factory=list, max_length=20)

    def codes(self) -> list[tuple[str, str]]:
        return [(c.system or "", c.code) for c in self.coding if c.code]

    def has(self, values: frozenset[str]) -> bool:
        return any(c.code in values for c in self.coding)


class FIdentifier(_In):
    system: Short | None = None
    value: Short | None = None


class FPatient(_In):
    resourceType: Literal["Patient"]
    identifier: list[FIdentifier] = Field(default_factory=list, max_length=20)
    gender: Literal["male", "female", "other", "unknown"] | None = None
    birthDate: FhirDate | None = None


class FCondition(_In):
    resourceType: Literal["Condition"]
    code: FConcept
    clinicalStatus: FConcept | None = None
    verificationStatus: FConcept | None = None


class FQuantity(_In):
    value: float = Field(allow_inf_nan=False)
    unit: Short | None = None
    code: Short | None = None  # UCUM, preferred over the display unit


class FObservation(_In):
    resourceType: Literal["Observation"]
    status: Literal[
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown",
    ]  # fmt: skip
    code: FConcept
    valueQuantity: FQuantity | None = None
    effectiveDateTime: FhirDate | None = None


class FMedicationStatement(_In):
    resourceType: Literal["MedicationStatement"]
    status: Literal[
        "active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
        "unknown", "not-taken",
    ]  # fmt: skip
    medicationCodeableConcept: FConcept | None = None


Resource = Annotated[
    FPatient | FCondition | FObservation | FMedicationStatement,
    Field(discriminator="resourceType"),
]


class FEntry(_In):
    resource: Resource


class Bundle(_In):
    """A FHIR R4 Bundle of one candidate: exactly one Patient with a pseudonymous
    identifier, and their Conditions, Observations and MedicationStatements."""

    resourceType: Literal["Bundle"]
    type: Literal["collection", "document", "searchset", "transaction", "batch", "message"]
    timestamp: AwareDatetime | None = None
    entry: list[FEntry] = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_pseudonymous_patient(self) -> Bundle:
        patients = [e.resource for e in self.entry if isinstance(e.resource, FPatient)]
        if len(patients) != 1:
            raise ValueError(f"a bundle holds exactly one Patient, not {len(patients)}")
        pseudonyms = [i for i in patients[0].identifier if i.system == PSEUDONYM_SYSTEM]
        if len(pseudonyms) != 1 or not PSEUDONYM.fullmatch(pseudonyms[0].value or ""):
            raise ValueError(
                f"the Patient needs exactly one identifier of system {PSEUDONYM_SYSTEM} "
                "whose value is a pseudonym (a letter, then letters, digits, '_', '.', '-')"
            )
        return self


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
    """The bundle with every identifying field dropped (module docstring)."""
    as_of = bundle.timestamp.date() if bundle.timestamp is not None else received
    patient = next(e.resource for e in bundle.entry if isinstance(e.resource, FPatient))
    pseudonym = next(i.value for i in patient.identifier if i.system == PSEUDONYM_SYSTEM)
    conditions, observations, medications = [], [], []
    for entry in bundle.entry:
        r = entry.resource
        if isinstance(r, FCondition):
            if r.verificationStatus is not None and r.verificationStatus.has(NOT_A_FINDING):
                continue
            active = r.clinicalStatus is None or not r.clinicalStatus.has(INACTIVE_CONDITION)
            conditions += [
                Coded.model_construct(system=s, code=c, active=active) for s, c in r.code.codes()
            ]
        elif isinstance(r, FObservation):
            if r.status in VOID_OBSERVATION or r.valueQuantity is None:
                continue
            q = r.valueQuantity
            days = None
            if r.effectiveDateTime is not None:
                days = (as_of - parse_date(r.effectiveDateTime)).days
            observations += [
                Measurement.model_construct(
                    system=s, code=c, value=q.value, unit=q.code or q.unit, days_before=days
                )
                for s, c in r.code.codes()
            ]
        elif isinstance(r, FMedicationStatement):
            if r.status == "entered-in-error" or r.medicationCodeableConcept is None:
                continue
            active = r.status in CURRENT_MEDICATION
            medications += [
                Coded.model_construct(system=s, code=c, active=active)
                for s, c in r.medicationCodeableConcept.codes()
            ]
    kinds = {type(e.resource) for e in bundle.entry}
    birth = patient.birthDate
    # the values were validated as the bundle was parsed: constructed, not validated again
    # (a batch of 5,000 bundles makes some 100,000 of these)
    return Candidate.model_construct(
        candidate_id=str(pseudonym),  # the validator made sure there is one
        as_of=as_of,
        age=None if birth is None else age_on(birth, as_of),
        birth_year=None if birth is None else int(birth[:4]),
        sex=_SEX.get(patient.gender or ""),
        conditions=conditions,
        observations=observations,
        medications=medications,
        has_conditions=FCondition in kinds,
        has_medications=FMedicationStatement in kinds,
    )

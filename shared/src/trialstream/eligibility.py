"""A study's eligibility criteria and enrollment plan, as its study file declares them
(issue 19; decision 0082). Both blocks are optional: a study without `eligibility` is not
pre-screened, one without `enrollment` has no target to forecast.

Each criterion is one structured rule with the sentence a coordinator reads (`text`):

    eligibility:
      version: 2                       # bump on every change: decisions name it
      criteria:
        - {id: adult, kind: age, min: 18, max: 85, text: Aged 18 to 85}
        - id: hf
          kind: diagnosis
          text: Heart failure (ICD-10 I50)
          codes: [{system: "http://hl7.org/fhir/sid/icd-10", code: I50}]
        - id: ntprobnp
          kind: lab
          text: NT-proBNP at least 400 pg/mL in the last 90 days
          codes: [{system: "http://loinc.org", code: 33762-6}]
          unit: pg/mL
          min: 400
          within_days: 90
        - id: no-warfarin
          kind: medication
          exclusion: true
          text: Not on warfarin
          codes: [{system: "http://www.nlm.nih.gov/research/umls/rxnorm", code: "11289"}]

A diagnosis code matches the code itself and every code below it (I50 matches I50.9);
`exclusion: true` turns a rule round: meeting it makes the candidate ineligible.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from trialstream.events.base import SiteId

CriterionId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=300)]
System = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Unit = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Sex = Literal["female", "male", "other"]  # FHIR administrative gender, less "unknown"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coding(_Strict):
    system: System
    code: Code


class _Rule(_Strict):
    id: CriterionId
    text: Text
    exclusion: bool = Field(default=False, description="Meeting it makes one ineligible")


class _Range(_Rule):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_range(self) -> _Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class AgeCriterion(_Range):
    kind: Literal["age"]


class SexCriterion(_Rule):
    kind: Literal["sex"]
    sexes: list[Sex] = Field(min_length=1)


class DiagnosisCriterion(_Rule):
    kind: Literal["diagnosis"]
    codes: list[Coding] = Field(min_length=1, max_length=50)


class MedicationCriterion(_Rule):
    kind: Literal["medication"]
    codes: list[Coding] = Field(min_length=1, max_length=50)


class LabCriterion(_Range):
    kind: Literal["lab"]
    codes: list[Coding] = Field(min_length=1, max_length=10, description="equivalent codes")
    unit: Unit = Field(
        description="UCUM unit the limits are in; a result in another unit is converted where "
        "the code's row of the conversion table knows both units, else needs review"
    )
    within_days: int = Field(default=365, ge=1, le=3650)


Criterion = Annotated[
    AgeCriterion | SexCriterion | DiagnosisCriterion | MedicationCriterion | LabCriterion,
    Field(discriminator="kind"),
]


class Eligibility(_Strict):
    version: int = Field(ge=1, description="Bumped on every change; each decision names it")
    criteria: list[Criterion] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _ids_once(self) -> Eligibility:
        ids = [c.id for c in self.criteria]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"each criterion id may appear once; repeated: {', '.join(twice)}")
        return self


class SiteTarget(_Strict):
    site: SiteId
    target: int = Field(ge=1, le=1_000_000)
    opened: date | None = Field(default=None, description="When the site began recruiting")


class EnrollmentPlan(_Strict):
    """The study's enrollment target, and optionally each site's (what is forecast)."""

    target: int = Field(ge=1, le=1_000_000)
    start: date | None = Field(default=None, description="When recruitment opened")
    sites: list[SiteTarget] = Field(default_factory=list, max_length=1000)


def plan_problems(plan: EnrollmentPlan, site_ids: set[str]) -> list[str]:
    """What is wrong with a plan for a study of these sites (empty: nothing)."""
    named = [s.site for s in plan.sites]
    problems = [f"site '{s}' is not one of the study's sites" for s in named if s not in site_ids]
    twice = sorted({s for s in named if named.count(s) > 1})
    if twice:
        problems.append(f"each site's target may appear once; repeated: {', '.join(twice)}")
    return problems

"""Eligibility criteria compiled to columnar checks (decision 0082).

A batch of candidates becomes arrays once (`extract`): age, sex, a column per diagnosis,
medication and lab code any study of the batch names. Every criterion of every study is
then a few numpy operations over those columns, giving one outcome per candidate: PASS,
FAIL or UNKNOWN (data missing). A study's decision per candidate: ineligible if any
criterion fails, else needs review if any is unknown, else eligible. Explanations are
built afterwards, only for the rows that are kept (`explain`). A lab result in another
unit than its criterion's is converted when the code's row of `units.TABLE` knows both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from trialstream.eligibility import (
    AgeCriterion,
    Criterion,
    DiagnosisCriterion,
    Eligibility,
    LabCriterion,
    MedicationCriterion,
    SexCriterion,
)

from intelligence.domain import units as lab_units
from intelligence.domain.fhir import Candidate

PASS, FAIL, UNKNOWN = np.int8(0), np.int8(1), np.int8(2)
OUTCOME = ("pass", "fail", "unknown")
ELIGIBLE, INELIGIBLE, REVIEW = 0, 1, 2
DECISION = ("eligible", "ineligible", "needs_review")
SEXES = ("female", "male", "other")
Key = tuple[str, str]


@dataclass(frozen=True)
class Vocabulary:
    """The columns: every code the criteria being evaluated name, by kind."""

    diagnoses: dict[Key, int]
    medications: dict[Key, int]
    labs: dict[Key, int]
    units: dict[str, int]

    @classmethod
    def of(cls, studies: Sequence[Eligibility]) -> Vocabulary:
        dx: dict[Key, int] = {}
        med: dict[Key, int] = {}
        lab: dict[Key, int] = {}
        units: dict[str, int] = {}
        for criteria in studies:
            for c in criteria.criteria:
                table = {"diagnosis": dx, "medication": med, "lab": lab}.get(c.kind)
                for coding in getattr(c, "codes", ()):
                    assert table is not None
                    table.setdefault((coding.system, coding.code), len(table))
                if isinstance(c, LabCriterion):
                    units.setdefault(c.unit, len(units))
                    for k in c.codes:  # a result in a unit convertible to it needs a column
                        for u in lab_units.units_of(k.system, k.code):
                            units.setdefault(u, len(units))
        return cls(dx, med, lab, units)


@dataclass(frozen=True)
class Features:
    age: np.ndarray  # float, NaN: unknown
    sex: np.ndarray  # int8 index of SEXES, -1: unknown
    has_conditions: np.ndarray  # bool
    has_medications: np.ndarray  # bool
    diagnoses: np.ndarray  # bool (n, len(vocabulary.diagnoses))
    medications: np.ndarray  # bool (n, len(vocabulary.medications))
    lab_value: np.ndarray  # float (n, labs): the latest dated result, NaN: none
    lab_days: np.ndarray  # float (n, labs): its days before the record's date
    lab_unit: np.ndarray  # int16 (n, labs): index in vocabulary.units, -1: another unit


def extract(candidates: Sequence[Candidate], vocabulary: Vocabulary) -> Features:
    """The batch as arrays: the one Python loop over candidates (each resource once)."""
    n = len(candidates)
    dx_index, med_index, lab_index = vocabulary.diagnoses, vocabulary.medications, vocabulary.labs
    units = vocabulary.units
    age = np.full(n, np.nan)
    sex = np.full(n, -1, dtype=np.int8)
    has_c = np.zeros(n, dtype=bool)
    has_m = np.zeros(n, dtype=bool)
    dx = np.zeros((n, len(dx_index)), dtype=bool)
    med = np.zeros((n, len(med_index)), dtype=bool)
    value = np.full((n, len(lab_index)), np.nan)
    days = np.full((n, len(lab_index)), np.inf)
    unit = np.full((n, len(lab_index)), -1, dtype=np.int16)
    sex_of = {s: i for i, s in enumerate(SEXES)}
    for i, c in enumerate(candidates):
        if c.age is not None:
            age[i] = c.age
        if c.sex is not None:
            sex[i] = sex_of[c.sex]
        has_c[i], has_m[i] = c.has_conditions, c.has_medications
        for cond in c.conditions:
            if cond.active:
                code = cond.code
                # a code matches every criterion code it starts with (I50.9 -> I50)
                for k in range(len(code), 0, -1):
                    j = dx_index.get((cond.system, code[:k]))
                    if j is not None:
                        dx[i, j] = True
        for m in c.medications:
            if m.active:
                j = med_index.get((m.system, m.code))
                if j is not None:
                    med[i, j] = True
        for o in c.observations:
            j = lab_index.get((o.system, o.code))
            if j is None or o.days_before is None or o.days_before < 0:
                continue
            if o.days_before < days[i, j]:  # the latest result of that test
                days[i, j], value[i, j] = o.days_before, o.value
                unit[i, j] = units.get(o.unit or "", -1)
    return Features(age, sex, has_c, has_m, dx, med, value, days, unit)


@dataclass(frozen=True)
class Evaluation:
    """One study's criteria over a batch: outcome (n, criteria) of PASS/FAIL/UNKNOWN,
    margin (n, criteria): how far inside the limits a range criterion is (relative to
    the limit; NaN where not a range or no value), and the decision per candidate."""

    outcome: np.ndarray
    margin: np.ndarray
    decision: np.ndarray  # int8: ELIGIBLE, INELIGIBLE, REVIEW


def _range(x: np.ndarray, lo: float | None, hi: float | None) -> tuple[np.ndarray, np.ndarray]:
    inside: np.ndarray = np.ones(x.shape, dtype=bool)
    margin: np.ndarray = np.full(x.shape, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        if lo is not None:
            inside = inside & (x >= lo)
            margin = np.minimum(margin, (x - lo) / max(abs(lo), 1.0))
        if hi is not None:
            inside = inside & (x <= hi)
            margin = np.minimum(margin, (hi - x) / max(abs(hi), 1.0))
    return inside, margin


def conversions(c: LabCriterion, v: Vocabulary) -> np.ndarray:
    """Per code of the criterion (rows) and unit of the vocabulary (columns, and a last one
    for a unit outside it), the factor to the criterion's unit; NaN: not convertible."""
    table = np.full((len(c.codes), len(v.units) + 1), np.nan)
    for i, k in enumerate(c.codes):
        for u, j in v.units.items():
            found = lab_units.factor(k.system, k.code, u, c.unit)
            if found is not None:
                table[i, j] = found
    return table


def _lab(c: LabCriterion, f: Features, v: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """The latest result among the criterion's equivalent codes, within its window, in the
    criterion's unit (converted where the code's table row knows both units)."""
    cols = [v.labs[(k.system, k.code)] for k in c.codes]
    days = f.lab_days[:, cols]
    pick = np.argmin(days, axis=1)
    rows = np.arange(len(pick))
    d, value = days[rows, pick], f.lab_value[:, cols][rows, pick]
    unit = f.lab_unit[:, cols][rows, pick]  # -1 (another unit) is the table's last column
    scale = conversions(c, v)[pick, unit]
    usable = (d <= c.within_days) & ~np.isnan(scale)
    value = value * np.where(usable, scale, 1.0)
    inside, margin = _range(value, c.min, c.max)
    return np.where(usable, np.where(inside, PASS, FAIL), UNKNOWN), np.where(usable, margin, np.nan)


def _present(table: np.ndarray, index: dict[Key, int], c: Criterion) -> np.ndarray:
    cols = [index[(k.system, k.code)] for k in getattr(c, "codes", ())]
    return np.asarray(table[:, cols].any(axis=1), dtype=bool)


def check(c: Criterion, f: Features, v: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """One criterion over the batch: (outcome, margin); an exclusion's outcome is turned
    round (having what it names fails it)."""
    n = len(f.age)
    margin = np.full(n, np.nan)
    if isinstance(c, AgeCriterion):
        inside, m = _range(f.age, c.min, c.max)
        known = ~np.isnan(f.age)
        met = np.where(known, np.where(inside, PASS, FAIL), UNKNOWN)
        margin = np.where(known, m, np.nan)
    elif isinstance(c, SexCriterion):
        allowed = np.isin(f.sex, [SEXES.index(s) for s in c.sexes])
        met = np.where(f.sex >= 0, np.where(allowed, PASS, FAIL), UNKNOWN)
    elif isinstance(c, DiagnosisCriterion):
        present = _present(f.diagnoses, v.diagnoses, c)
        met = np.where(present, PASS, np.where(f.has_conditions, FAIL, UNKNOWN))
    elif isinstance(c, MedicationCriterion):
        present = _present(f.medications, v.medications, c)
        met = np.where(present, PASS, np.where(f.has_medications, FAIL, UNKNOWN))
    else:
        met, margin = _lab(c, f, v)
    if c.exclusion:
        met = np.where(met == UNKNOWN, UNKNOWN, np.where(met == PASS, FAIL, PASS))
    return met.astype(np.int8), margin


def evaluate(eligibility: Eligibility, f: Features, v: Vocabulary) -> Evaluation:
    checked = [check(c, f, v) for c in eligibility.criteria]
    outcome = np.column_stack([o for o, _ in checked])
    margin = np.column_stack([m for _, m in checked])
    decision = np.where(
        (outcome == FAIL).any(axis=1),
        INELIGIBLE,
        np.where((outcome == UNKNOWN).any(axis=1), REVIEW, ELIGIBLE),
    ).astype(np.int8)
    return Evaluation(outcome, margin, decision)


def explain(eligibility: Eligibility, evaluation: Evaluation, row: int) -> list[dict[str, object]]:
    """Criterion by criterion, what the candidate of `row` got and why, for a person."""
    out: list[dict[str, object]] = []
    for j, c in enumerate(eligibility.criteria):
        outcome = OUTCOME[int(evaluation.outcome[row, j])]
        item: dict[str, object] = {"id": c.id, "text": c.text, "outcome": outcome}
        if outcome == "unknown":
            item["missing"] = _missing(c)
        margin = float(evaluation.margin[row, j])
        if not np.isnan(margin) and np.isfinite(margin):
            item["margin"] = round(margin, 4)
        out.append(item)
    return out


def _missing(c: Criterion) -> str:
    if isinstance(c, AgeCriterion):
        return "no full birth date"
    if isinstance(c, SexCriterion):
        return "no administrative sex"
    if isinstance(c, DiagnosisCriterion):
        return "no conditions in the record"
    if isinstance(c, MedicationCriterion):
        return "no medication statements in the record"
    return f"no result in {c.unit} (or a unit convertible to it) in the last {c.within_days} days"

"""A batch of candidates against a set of studies' criteria: decisions, explanations and
screen-failure risk (pure: the service stores what this returns)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from trialstream.eligibility import Eligibility

from intelligence.domain import criteria as rules
from intelligence.domain import risk
from intelligence.domain.fhir import Candidate


def digest(eligibility: Eligibility) -> str:
    """The criteria's identity: what a decision names so it can be re-made."""
    text = json.dumps(eligibility.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Decision:
    candidate_id: str
    study_id: str
    criteria_version: int
    criteria_digest: str
    decision: str  # eligible, ineligible, needs_review
    outcomes: bytes  # one code per criterion, in the criteria's order (criteria.OUTCOME)
    explanation: list[dict[str, Any]]  # empty unless asked for (re-made from the above)
    risk: float | None  # screen-failure probability; None for the ineligible


@dataclass(frozen=True)
class Batch:
    """Evaluations of one batch, by study, before explanations are built."""

    candidates: Sequence[Candidate]
    studies: Sequence[tuple[str, Eligibility]]
    evaluations: list[rules.Evaluation]
    risks: list[np.ndarray]


def evaluate(
    candidates: Sequence[Candidate],
    studies: Sequence[tuple[str, Eligibility]],
    model: risk.RiskModel | None = None,
    site_failure: Mapping[str, float] | None = None,
) -> Batch:
    """Every candidate against every study: the columnar part (no per-candidate Python
    beyond feature extraction, which happens once for all the studies)."""
    vocabulary = rules.Vocabulary.of([e for _, e in studies])
    features = rules.extract(candidates, vocabulary)
    evaluations, risks = [], []
    prior = risk.PRIOR_FAILURE
    for study_id, eligibility in studies:
        ev = rules.evaluate(eligibility, features, vocabulary)
        evaluations.append(ev)
        if model is None:
            risks.append(np.full(len(candidates), np.nan))
            continue
        unknown = (ev.outcome == rules.UNKNOWN).sum(axis=1)
        rate = np.full(len(candidates), (site_failure or {}).get(study_id, prior))
        x = risk.features(ev.margin, unknown, rate, len(eligibility.criteria))
        scored = model.score(x)
        risks.append(np.where(ev.decision == rules.INELIGIBLE, np.nan, scored))
    return Batch(candidates, studies, evaluations, risks)


def decisions(batch: Batch, explain: bool = True) -> list[Decision]:
    """Each (candidate, study) decision with its outcome codes, criterion by criterion,
    and (when `explain`) the explanation for a person."""
    out = []
    for (study_id, eligibility), ev, scores in zip(
        batch.studies, batch.evaluations, batch.risks, strict=True
    ):
        version, made_under = eligibility.version, digest(eligibility)
        codes = np.ascontiguousarray(ev.outcome, dtype=np.uint8)
        names = [rules.DECISION[int(k)] for k in ev.decision]
        rounded = np.round(scores, 6).tolist()
        for row, candidate in enumerate(batch.candidates):
            score = rounded[row]
            out.append(
                Decision(
                    candidate_id=candidate.candidate_id,
                    study_id=study_id,
                    criteria_version=version,
                    criteria_digest=made_under,
                    decision=names[row],
                    outcomes=codes[row].tobytes(),
                    explanation=rules.explain(eligibility, ev, row) if explain else [],
                    risk=None if score != score else score,  # NaN: not scored
                )
            )
    return out


@dataclass(frozen=True)
class Columns:
    """A batch's decisions as columns, study after study (what is stored): no object
    per decision, so a batch of 100,000 pairs costs no per-pair Python beyond its bytes."""

    candidate_id: list[str]
    study_id: list[str]
    criteria_digest: list[str]
    criteria_version: list[int]
    decision: list[str]
    outcomes: list[bytes]
    risk: list[float | None]

    def counts(self) -> dict[str, int]:
        """`study:decision` -> how many."""
        out: dict[str, int] = {}
        for s, d in zip(self.study_id, self.decision, strict=True):
            out[f"{s}:{d}"] = out.get(f"{s}:{d}", 0) + 1
        return out


def columns(batch: Batch) -> Columns:
    ids = [c.candidate_id for c in batch.candidates]
    n = len(ids)
    out = Columns([], [], [], [], [], [], [])
    for (study_id, eligibility), ev, scores in zip(
        batch.studies, batch.evaluations, batch.risks, strict=True
    ):
        out.candidate_id.extend(ids)
        out.study_id.extend([study_id] * n)
        out.criteria_digest.extend([digest(eligibility)] * n)
        out.criteria_version.extend([eligibility.version] * n)
        out.decision.extend(rules.DECISION[int(k)] for k in ev.decision)
        codes = np.ascontiguousarray(ev.outcome, dtype=np.uint8)
        out.outcomes.extend(row.tobytes() for row in codes)
        rounded = np.round(scores, 6)
        out.risk.extend(
            [None if np.isnan(x) else x for x in rounded.tolist()]
            if np.isnan(rounded).any()
            else rounded.tolist()
        )
    return out


def explain_stored(
    candidates: Sequence[Candidate], eligibility: Eligibility, outcomes: Sequence[bytes]
) -> list[list[dict[str, Any]]]:
    """Explanations of stored decisions made under `eligibility`: the stored outcome
    codes, with the margins re-made from the stored records (decisions store no text)."""
    vocabulary = rules.Vocabulary.of([eligibility])
    again = rules.evaluate(eligibility, rules.extract(candidates, vocabulary), vocabulary)
    width = len(eligibility.criteria)
    stored = again.outcome.copy()
    for row, codes in enumerate(outcomes):
        if len(codes) == width:  # always, for decisions made under these criteria
            stored[row] = np.frombuffer(codes, dtype=np.int8)
    ev = rules.Evaluation(stored, again.margin, again.decision)
    return [rules.explain(eligibility, ev, row) for row in range(len(outcomes))]

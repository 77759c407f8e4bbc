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
    explanation: list[dict[str, Any]]
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


def decisions(batch: Batch) -> list[Decision]:
    """Each (candidate, study) decision with its explanation, criterion by criterion."""
    out = []
    for (study_id, eligibility), ev, scores in zip(
        batch.studies, batch.evaluations, batch.risks, strict=True
    ):
        version, made_under = eligibility.version, digest(eligibility)
        for row, candidate in enumerate(batch.candidates):
            score = float(scores[row])
            out.append(
                Decision(
                    candidate_id=candidate.candidate_id,
                    study_id=study_id,
                    criteria_version=version,
                    criteria_digest=made_under,
                    decision=rules.DECISION[int(ev.decision[row])],
                    explanation=rules.explain(eligibility, ev, row),
                    risk=None if np.isnan(score) else round(score, 6),
                )
            )
    return out

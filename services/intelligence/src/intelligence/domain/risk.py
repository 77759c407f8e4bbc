"""Screen-failure risk from criteria margins and the site's history, with scikit-learn.

A candidate the rules call eligible (or needs review) can still fail screening: a lab
value close to its limit is measured again and falls on the other side, data that was
missing turns out to exclude them, a site screens less carefully than another. No real
cohort ships with an open-source platform, so the model is trained on a simulated one
(seeded, so training is deterministic and the version names seed and size), like the
retention service's dropout model. The rules-only baseline it is reported against ranks
by what the rules alone say: how many criteria need review.

Features per candidate and study (`FEATURES`): the smallest relative margin of a range
criterion that passed (how close to a limit), how many criteria are unknown, the site's
observed screen-failure rate so far (smoothed), and the number of criteria.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

FEATURES = ("closest_margin", "unknown_criteria", "site_failure_rate", "criteria")
MARGIN_CAP = 1.0  # a margin past 100 % of the limit is as safe as 100 %
REMEASURE_CV = 0.12  # a lab value re-measured at screening varies by this much
PRIOR_SCREENS, PRIOR_FAILURE = 10, 0.2  # a new site is taken as 2 failures in 10


def site_failure_rate(failed: np.ndarray, screened: np.ndarray) -> np.ndarray:
    """The site's failures over its screenings, shrunk to the prior for a new site."""
    rate: np.ndarray = (failed + PRIOR_FAILURE * PRIOR_SCREENS) / (screened + PRIOR_SCREENS)
    return rate


def site_rate(failed: int, screened: int) -> float:
    return (failed + PRIOR_FAILURE * PRIOR_SCREENS) / (screened + PRIOR_SCREENS)


def features(
    margin: np.ndarray, unknown: np.ndarray, site_rate: np.ndarray, criteria: int
) -> np.ndarray:
    """(n, FEATURES) from an evaluation's margins (n, criteria) and unknown counts (n,)."""
    passed = np.where(np.isnan(margin) | (margin < 0), np.inf, margin)
    closest = np.minimum(passed.min(axis=1, initial=np.inf), MARGIN_CAP)
    n = len(unknown)
    return np.column_stack([closest, unknown.astype(float), site_rate, np.full(n, float(criteria))])


@dataclass(frozen=True)
class Cohort:
    x: np.ndarray  # (n, len(FEATURES))
    failed: np.ndarray  # (n,) 0/1: failed screening


def simulate_cohort(n: int, seed: int) -> Cohort:
    """Candidates referred for screening: each has 0-3 range criteria that passed at some
    relative margin, 0-3 unknown criteria, a site with its own hidden failure propensity
    (and an observed history of it). Screening fails when a re-measured value crosses its
    limit, when an unknown criterion turns out unmet (40 % each), or for the site's
    reasons not in the record."""
    rng = np.random.default_rng(seed)
    ranges = rng.integers(1, 4, size=n)
    margins = rng.exponential(0.35, size=(n, 3))
    margins[np.arange(3)[None, :] >= ranges[:, None]] = np.inf
    closest = np.minimum(margins.min(axis=1), MARGIN_CAP)
    # re-measurement: a value at relative margin m stays inside with P = Phi(m / cv)
    stays = norm.cdf(np.where(np.isinf(margins), 10.0, margins / REMEASURE_CV))
    crosses = (rng.random((n, 3)) > stays).any(axis=1)
    unknown = rng.choice(4, size=n, p=[0.55, 0.25, 0.12, 0.08])
    unmet = rng.random(n) > 0.6**unknown
    site_propensity = rng.beta(2, 14, size=60)
    site = rng.integers(0, 60, size=n)
    history = rng.integers(0, 80, size=n)
    failures = rng.binomial(history, site_propensity[site])
    site_reason = rng.random(n) < site_propensity[site]
    failed = (crosses | unmet | site_reason).astype(int)
    criteria = ranges + unknown + rng.integers(1, 5, size=n)
    rate = site_failure_rate(failures.astype(float), history.astype(float))
    x = np.column_stack([closest, unknown.astype(float), rate, criteria.astype(float)])
    return Cohort(x, failed)


@dataclass(frozen=True)
class Calibration:
    brier: float
    expected_calibration_error: float  # mean |observed - predicted| over 10 risk bins
    bins: list[tuple[float, float, int]]  # (mean predicted, observed rate, count)


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> Calibration:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            predicted, observed = float(p[inside].mean()), float(y[inside].mean())
            table.append((round(predicted, 4), round(observed, 4), int(inside.sum())))
            ece += inside.mean() * abs(predicted - observed)
    return Calibration(float(brier_score_loss(y, p)), float(ece), table)


@dataclass(frozen=True)
class RiskModel:
    pipeline: Pipeline
    version: str
    auc: float  # held out
    baseline_auc: float  # rules only: the number of unknown criteria
    calibration: Calibration
    baseline_calibration: Calibration

    def score(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0)
        proba: np.ndarray = self.pipeline.predict_proba(x)[:, 1]
        return proba


def baseline(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Rules only: the failure rate seen at each count of unknown criteria."""
    unknown_train, unknown = x_train[:, 1].astype(int), x[:, 1].astype(int)
    rates = {u: float(y_train[unknown_train == u].mean()) for u in np.unique(unknown_train)}
    overall = float(y_train.mean())
    return np.array([rates.get(u, overall) for u in unknown])


def train(n: int = 20_000, seed: int = 20261204) -> RiskModel:
    cohort = simulate_cohort(n, seed)
    x_train, x_test, y_train, y_test = train_test_split(
        cohort.x, cohort.failed, test_size=0.3, random_state=seed, stratify=cohort.failed
    )
    # the margin acts through a steep curve near the limit: spline bases let the logistic
    # model follow it (and keep its probabilities calibrated)
    pipeline = make_pipeline(
        ColumnTransformer(
            [("margin", SplineTransformer(n_knots=6, degree=3), [0])], remainder="passthrough"
        ),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )
    pipeline.fit(x_train, y_train)
    p = pipeline.predict_proba(x_test)[:, 1]
    b = baseline(x_train, y_train, x_test)
    return RiskModel(
        pipeline=pipeline,
        version=f"screen-failure-logreg-1.0-sim{n}-seed{seed}",
        auc=float(roc_auc_score(y_test, p)),
        baseline_auc=float(roc_auc_score(y_test, b)),
        calibration=calibration(y_test, p),
        baseline_calibration=calibration(y_test, b),
    )

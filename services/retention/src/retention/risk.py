"""Dropout risk from engagement features, with scikit-learn.

No real cohort ships with an open-source platform, so the model is trained on a
simulated one: a latent engagement trait drives wear time, ePRO compliance, missed
visits and response latency, and (with noise) dropout. The simulation is seeded, so
training is deterministic and the model version names the seed and size. Pure: numpy
and scikit-learn only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ("wear_fraction", "epro_compliance", "missed_visits", "mean_latency_hours")


@dataclass(frozen=True)
class Cohort:
    x: np.ndarray  # (n, len(FEATURES))
    dropped_out: np.ndarray  # (n,) 0/1


def simulate_cohort(n: int, seed: int) -> Cohort:
    rng = np.random.default_rng(seed)
    trait = rng.normal(size=n)  # latent engagement
    wear = 1 / (1 + np.exp(-(0.8 + 1.2 * trait + rng.normal(scale=0.8, size=n))))
    compliance = 1 / (1 + np.exp(-(1.2 + 1.0 * trait + rng.normal(scale=0.9, size=n))))
    missed_visits = rng.poisson(np.exp(-0.6 - 0.7 * trait))
    latency = rng.lognormal(mean=1.0 - 0.4 * trait, sigma=0.6)
    logit = -1.6 - 1.5 * trait + rng.normal(scale=1.0, size=n)
    dropped = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x = np.column_stack([wear, compliance, missed_visits.astype(float), latency])
    return Cohort(x, dropped)


@dataclass(frozen=True)
class RiskModel:
    pipeline: Pipeline
    version: str
    auc: float  # on the held-out part of the simulated cohort
    medians: np.ndarray  # imputation for a feature not observed yet

    def score(self, features: np.ndarray) -> np.ndarray:
        """Dropout probability per row; NaN features take the cohort median."""
        x = np.where(np.isnan(features), self.medians, features)
        proba: np.ndarray = self.pipeline.predict_proba(x)[:, 1]
        return proba


def train(n: int = 4000, seed: int = 20261125) -> RiskModel:
    cohort = simulate_cohort(n, seed)
    x_train, x_test, y_train, y_test = train_test_split(
        cohort.x, cohort.dropped_out, test_size=0.3, random_state=seed, stratify=cohort.dropped_out
    )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    pipeline.fit(x_train, y_train)
    auc = float(roc_auc_score(y_test, pipeline.predict_proba(x_test)[:, 1]))
    version = f"dropout-logreg-1.0-sim{n}-seed{seed}"
    return RiskModel(pipeline, version, auc, np.median(x_train, axis=0))

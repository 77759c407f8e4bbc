"""Enrollment forecasts: the Poisson-gamma recruitment model (decision 0084).

Anisimov and Fedorov (Statistics in Medicine 26, 2007): each site recruits as a Poisson
process whose rate is drawn from one gamma distribution across the study's sites. Fitted
to what the sites enrolled (k_i in tau_i days open), the gamma's shape and rate
(alpha, beta) are the maximum of the negative-binomial marginal likelihood; each site's
rate is then Gamma(alpha + k_i, beta + tau_i). The time to recruit the n still missing is,
given the rates, Gamma(n, sum of rates); drawn over the rates' posterior it gives the
forecast and its interval. Every new enrolment moves k_i (and time moves tau_i), so
the forecast is re-made from the counts whenever it is asked for.

Pure: numpy and scipy; seeded, so a forecast is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

ALPHA_BOUNDS = (0.2, 500.0)  # a single site cannot tell its spread: alpha goes to the bound


@dataclass(frozen=True)
class Fit:
    alpha: float
    beta: float  # per day
    # covariance of (log alpha, log beta) at the maximum (inverse Hessian): how unsure the
    # fit is, drawn from with the rates so the interval carries it (decision 0084)
    cov: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))

    @property
    def mean_rate(self) -> float:
        return self.alpha / self.beta


def _nll(params: np.ndarray, k: np.ndarray, tau: np.ndarray) -> float:
    a, b = np.exp(params)
    ll = gammaln(a + k) - gammaln(a) + a * np.log(b) - (a + k) * np.log(b + tau)
    return -float(ll.sum())


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    out = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            di, dj = np.eye(2)[i] * h, np.eye(2)[j] * h
            out[i, j] = (f(x + di + dj) - f(x + di - dj) - f(x - di + dj) + f(x - di - dj)) / (
                4 * h * h
            )
    return out


def fit(counts: np.ndarray, exposure_days: np.ndarray) -> Fit:
    """Maximum-likelihood (alpha, beta) of the sites' counts; with nothing enrolled yet a
    vague prior (one enrolment per site per all the days open so far)."""
    k = np.asarray(counts, dtype=float)
    tau = np.maximum(np.asarray(exposure_days, dtype=float), 1e-6)
    if k.sum() == 0:
        return Fit(1.0, float(tau.sum() / len(tau)) + 1.0, ((1.0, 0.0), (0.0, 1.0)))
    mean = k.sum() / tau.sum()
    start = np.log([2.0, 2.0 / mean])
    lo, hi = np.log(ALPHA_BOUNDS)
    result = minimize(
        _nll, start, args=(k, tau), method="L-BFGS-B", bounds=[(lo, hi), (-20.0, 20.0)]
    )
    hessian = _hessian(lambda p: _nll(p, k, tau), result.x)
    try:
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        cov = np.eye(2)
    if not np.all(np.isfinite(cov)) or np.any(np.linalg.eigvalsh((cov + cov.T) / 2) < 0):
        cov = np.diag([4.0, 4.0 / max(k.sum(), 1.0)])  # flat in alpha: one site, or no spread
    a, b = np.exp(result.x)
    return Fit(float(a), float(b), ((cov[0, 0], cov[0, 1]), (cov[1, 0], cov[1, 1])))


@dataclass(frozen=True)
class Interval:
    median: float
    lower: float
    upper: float


def rate_draws(
    model: Fit, counts: np.ndarray, exposure_days: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """(draws, sites) rates per day: (alpha, beta) drawn around the fit, then each site's
    rate from its posterior Gamma(alpha + k_i, beta + tau_i)."""
    centre = np.log([model.alpha, model.beta])
    params = rng.multivariate_normal(centre, np.asarray(model.cov), size=draws)
    lo, hi = np.log(ALPHA_BOUNDS)
    alpha = np.exp(np.clip(params[:, 0], lo, hi))[:, None]
    beta = np.exp(params[:, 1])[:, None]
    shape = alpha + np.asarray(counts, dtype=float)[None, :]
    rate = beta + np.asarray(exposure_days, dtype=float)[None, :]
    drawn: np.ndarray = rng.gamma(shape, 1.0 / rate)
    return drawn


def days_to(
    remaining: int, rates: np.ndarray, level: float, rng: np.random.Generator
) -> Interval | None:
    """Days until `remaining` more enrolments at the drawn total rates (one per draw);
    None when nothing remains."""
    if remaining <= 0:
        return None
    times = rng.gamma(remaining, 1.0 / np.maximum(rates, 1e-12))
    tail = (1 - level) / 2
    lower, median, upper = np.quantile(times, [tail, 0.5, 1 - tail])
    return Interval(float(median), float(lower), float(upper))


@dataclass(frozen=True)
class SiteForecast:
    site_id: str
    enrolled: int
    exposure_days: float
    target: int | None
    rate_per_30_days: float
    days: Interval | None  # to its own target, if it has one not reached yet


@dataclass(frozen=True)
class StudyForecast:
    fit: Fit
    enrolled: int
    target: int
    days: Interval | None  # to the study's target; None: reached
    sites: list[SiteForecast]


def forecast(
    site_ids: Sequence[str],
    counts: Sequence[int],
    exposure_days: Sequence[float],
    site_targets: Sequence[int | None],
    target: int,
    *,
    level: float = 0.9,
    draws: int = 4000,
    seed: int = 0,
) -> StudyForecast:
    rng = np.random.default_rng(seed)
    k = np.asarray(counts, dtype=float)
    tau = np.asarray(exposure_days, dtype=float)
    model = fit(k, tau)
    rates = rate_draws(model, k, tau, draws, rng)
    sites = []
    for i, site in enumerate(site_ids):
        own = site_targets[i]
        sites.append(
            SiteForecast(
                site_id=site,
                enrolled=int(k[i]),
                exposure_days=float(tau[i]),
                target=own,
                rate_per_30_days=float(30 * rates[:, i].mean()),
                days=None if own is None else days_to(own - int(k[i]), rates[:, i], level, rng),
            )
        )
    enrolled = int(k.sum())
    total = days_to(target - enrolled, rates.sum(axis=1), level, rng)
    return StudyForecast(model, enrolled, target, total, sites)


@dataclass(frozen=True)
class Backtest:
    studies: int
    level: float
    coverage: float  # share of simulated studies whose true time fell in the interval
    median_relative_error: float


def backtest(
    studies: int = 300,
    sites: int = 20,
    level: float = 0.9,
    seed: int = 19,
    *,
    alpha: float = 3.0,
    mean_per_30_days: float = 1.5,
    observe_days: float = 120.0,
    draws: int = 2000,
) -> Backtest:
    """Simulated studies: site rates from Gamma(alpha, alpha / mean), sites opening over
    the first 60 days, observed for `observe_days`; the truth is the time the simulation
    takes to reach the target after that (exact: the sum of the sites' Poisson processes
    waits Gamma(remaining, total rate)). Counts how often the forecast's interval held it."""
    rng = np.random.default_rng(seed)
    beta = alpha / (mean_per_30_days / 30)
    hits, errors, ran = 0, [], 0
    for s in range(studies):
        rates = rng.gamma(alpha, 1 / beta, size=sites)
        opened = rng.uniform(0, 60, size=sites)
        tau = observe_days - opened
        k = rng.poisson(rates * tau)
        target = int(k.sum() + max(10, rng.integers(1, 4) * k.sum()))
        remaining = target - int(k.sum())
        truth = rng.gamma(remaining, 1 / rates.sum())
        made = forecast(
            [f"s{i}" for i in range(sites)],
            list(k),
            list(tau),
            [None] * sites,
            target,
            level=level,
            draws=draws,
            seed=seed * 100_003 + s,
        )
        assert made.days is not None
        ran += 1
        hits += int(made.days.lower <= truth <= made.days.upper)
        errors.append(abs(made.days.median - truth) / truth)
    return Backtest(ran, level, hits / ran, float(np.median(errors)))

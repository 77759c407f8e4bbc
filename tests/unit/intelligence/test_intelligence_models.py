"""The forecast model on seeded simulations (with tolerances, not recorded numbers) and
the screen-failure model against its rules-only baseline."""

from __future__ import annotations

import numpy as np
from intelligence.domain import forecast, risk


def test_the_fit_recovers_the_simulated_gamma_of_site_rates() -> None:
    rng = np.random.default_rng(11)
    alpha, mean = 4.0, 2.0 / 30  # two enrolments a month on average
    rates = rng.gamma(alpha, mean / alpha, size=400)
    tau = rng.uniform(100, 300, size=400)
    fitted = forecast.fit(rng.poisson(rates * tau), tau)
    assert abs(fitted.mean_rate - mean) / mean < 0.1
    assert 2.5 < fitted.alpha < 6.5


def test_intervals_cover_the_true_time_near_their_nominal_level() -> None:
    result = forecast.backtest(studies=120, sites=12, level=0.8, seed=5, draws=1000)
    # 120 studies: the binomial standard error of a coverage of 0.8 is about 0.037
    assert abs(result.coverage - 0.8) < 0.1


def test_a_site_with_its_own_target_gets_its_own_forecast_and_a_reached_target_none() -> None:
    made = forecast.forecast(
        ["a", "b"], [10, 0], [100.0, 100.0], [12, None], target=10, seed=1, draws=500
    )
    assert made.days is None  # 10 of 10 enrolled
    assert made.sites[0].days is not None
    assert made.sites[0].days.lower > 0
    assert made.sites[1].days is None
    # site b enrolled nobody in 100 days: its rate is drawn down from the study's
    assert made.sites[1].rate_per_30_days < made.sites[0].rate_per_30_days


def test_more_enrolments_bring_the_forecast_closer() -> None:
    slow = forecast.forecast(["a"], [2], [60.0], [None], target=50, seed=2)
    fast = forecast.forecast(["a"], [20], [60.0], [None], target=50, seed=2)
    assert slow.days is not None
    assert fast.days is not None
    assert fast.days.median < slow.days.median


def test_the_risk_model_beats_the_rules_only_baseline_and_is_calibrated() -> None:
    model = risk.train(n=8000, seed=3)
    assert model.auc > model.baseline_auc + 0.03
    assert model.calibration.expected_calibration_error < 0.06
    close = model.score(np.array([[0.01, 0, 0.2, 6], [0.9, 0, 0.2, 6]]))
    assert close[0] > close[1]  # a value at its limit fails screening more often

"""Early-warning KRIs a sponsor can read from enrolments alone (issue 19).

"Below forecast" (decision 0085): the Poisson-gamma model (decision 0084) fitted to the
study's OTHER open sites says what a site of the study enrols in the days this one has
been open: the count is negative binomial with the fit's shape alpha and success
probability beta / (beta + days). Left out of its own fit, a site that enrols nothing
cannot widen the spread that excuses it. Fewer than that distribution's lower bound
(the interval's tail at the forecast's level) is red; fewer than its lower quartile,
amber; else green. A study with one open site has nothing to compare with: no light. The study
takes its worst site's light. Pure: numpy and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy.stats import nbinom

from intelligence.domain.forecast import fit


class Light(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


ORDER = (Light.GREEN, Light.AMBER, Light.RED)


@dataclass(frozen=True)
class Expected:
    """What a site of the study enrols in `days` open: median and interval bounds."""

    median: int
    lower: int
    upper: int
    quartile: int  # the lower quartile: below it is amber


def expected_to_date(alpha: float, beta: float, days: float, level: float) -> Expected:
    p = beta / (beta + max(days, 0.0))
    tail = (1 - level) / 2
    lower, quartile, median, upper = nbinom.ppf([tail, 0.25, 0.5, 1 - tail], alpha, p)
    return Expected(int(median), int(lower), int(upper), int(quartile))


def below_forecast(enrolled: int, expected: Expected) -> Light:
    if enrolled < expected.lower:
        return Light.RED
    if enrolled < expected.quartile:
        return Light.AMBER
    return Light.GREEN


def worst(lights: list[Light]) -> Light:
    return max(lights, key=ORDER.index, default=Light.GREEN)


def site_lights(
    counts: list[int], exposure_days: list[float], level: float
) -> list[tuple[Expected, Light] | None]:
    """Per site, what the other sites' fit expects by now and the light (None: alone)."""
    k = np.asarray(counts, dtype=float)
    tau = np.asarray(exposure_days, dtype=float)
    out: list[tuple[Expected, Light] | None] = []
    for i in range(len(k)):
        others = np.arange(len(k)) != i
        if not others.any():
            out.append(None)
            continue
        model = fit(k[others], tau[others])
        hoped = expected_to_date(model.alpha, model.beta, float(tau[i]), level)
        out.append((hoped, below_forecast(int(k[i]), hoped)))
    return out

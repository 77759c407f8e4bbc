"""The below-forecast KRI: a site is compared with the fit of the study's other sites."""

from __future__ import annotations

from intelligence.domain.kri import Expected, Light, below_forecast, site_lights, worst


def test_a_site_far_below_its_peers_is_red_and_the_peers_are_not() -> None:
    made = site_lights([20, 16, 18, 0], [100.5] * 4, 0.9)
    lights = [m[1] if m else None for m in made]
    assert lights[3] is Light.RED
    assert Light.RED not in lights[:3]
    hoped = made[3]
    assert hoped is not None
    assert hoped[0].lower > 0
    assert hoped[0].lower <= hoped[0].median


def test_the_days_open_count_a_late_site_with_few_is_not_below() -> None:
    made = site_lights([20, 16, 18, 2], [100.5, 100.5, 100.5, 5.5], 0.9)
    assert made[3] is not None
    assert made[3][1] is Light.GREEN


def test_a_lone_site_has_no_light_and_the_thresholds_are_the_interval() -> None:
    assert site_lights([3], [30.5], 0.9) == [None]
    hoped = Expected(median=10, lower=4, upper=18, quartile=7)
    assert [below_forecast(n, hoped) for n in (3, 4, 6, 7, 10)] == [
        Light.RED, Light.AMBER, Light.AMBER, Light.GREEN, Light.GREEN
    ]  # fmt: skip
    assert worst([Light.GREEN, Light.RED, Light.AMBER]) is Light.RED
    assert worst([]) is Light.GREEN

"""A study's KRI thresholds: the settings' with its file's kri_limits replacing the KRIs it
names, and which studies the periodic evaluation judges."""

from __future__ import annotations

from typing import Any

from monitoring.rbm.kri import present
from monitoring.rbm.study_limits import config_for, configs_to_evaluate, with_study_limits
from monitoring.settings import MonitoringSettings
from trialstream.studies import KriLimit, StudyDefinition, StudyRegistry

SETTINGS = MonitoringSettings().kri_config()


def study(study_id: str, modules: list[str], **declared: Any) -> StudyDefinition:
    return StudyDefinition.model_validate(
        {
            "study_id": study_id,
            "title": study_id,
            "sponsor": "Sponsor",
            "sites": [{"id": "s1", "timezone": "UTC"}],
            "modules": modules,
            **declared,
        }
    )


def test_study_limits_replace_only_the_kris_the_file_names() -> None:
    cfg = with_study_limits(SETTINGS, [KriLimit(kri="wear_time", amber=90.0, red=75.0)])
    wear = cfg.thresholds["wear_time"]
    assert (wear.amber, wear.red, wear.direction) == (90.0, 75.0, "below")
    assert cfg.from_study == {"wear_time"}
    for name in ("epro_on_time", "visit_window", "ack_median", "dq_flag_rate"):
        assert cfg.thresholds[name] == SETTINGS.thresholds[name]
    assert cfg.window_days == SETTINGS.window_days  # windows stay the service's


def test_the_same_value_is_judged_by_the_study_s_limits() -> None:
    # 70 % wear time: amber by the settings (80/60), red by a stricter study (90/75)
    strict = with_study_limits(SETTINGS, [KriLimit(kri="wear_time", amber=90.0, red=75.0)])
    assert SETTINGS.thresholds["wear_time"].status(70.0) == "amber"
    assert strict.thresholds["wear_time"].status(70.0) == "red"
    # an "above" KRI keeps its direction: 45 minutes is amber by 30/60, green by 50/120
    lenient = with_study_limits(SETTINGS, [KriLimit(kri="ack_median", amber=50.0, red=120.0)])
    assert SETTINGS.thresholds["ack_median"].status(45.0) == "amber"
    assert lenient.thresholds["ack_median"].status(45.0) == "green"


def test_presented_thresholds_say_where_they_came_from() -> None:
    cfg = config_for(
        SETTINGS,
        study("S-1", ["monitoring"], kri_limits=[{"kri": "visit_window", "amber": 50, "red": 40}]),
    )
    shown = {k["name"]: k for k in present({"visit_window": 45.0}, cfg)}
    assert shown["visit_window"]["threshold"] == {
        "amber": 50.0,
        "red": 40.0,
        "direction": "below",
        "source": "study",
    }
    assert shown["visit_window"]["status"] == "amber"
    settings_wear = {**SETTINGS.thresholds["wear_time"].as_dict(), "source": "settings"}
    assert shown["wear_time"]["threshold"] == settings_wear


def test_a_study_without_a_definition_here_shows_the_settings_thresholds() -> None:
    assert config_for(SETTINGS, None) is SETTINGS
    assert config_for(SETTINGS, study("S-2", ["monitoring"])).thresholds == SETTINGS.thresholds


def test_evaluation_judges_default_and_monitoring_studies_and_skips_the_rest() -> None:
    studies = StudyRegistry()
    limits = [{"kri": "epro_on_time", "amber": 95, "red": 90}]
    studies.apply(1, study("USES", ["monitoring", "epro"], kri_limits=limits))
    studies.apply(1, study("NOT-USED", ["ingest"], kri_limits=limits))
    configs = configs_to_evaluate(
        SETTINGS, ["default", "USES", "NOT-USED", "NOT-ANNOUNCED"], studies
    )
    assert set(configs) == {"default", "USES"}
    assert configs["default"] is SETTINGS
    assert configs["USES"].thresholds["epro_on_time"].red == 90.0
    assert configs["USES"].from_study == {"epro_on_time"}


def test_a_newer_study_version_s_limits_are_used() -> None:
    studies = StudyRegistry()
    studies.apply(1, study("S-3", ["monitoring"]))
    studies.apply(
        2, study("S-3", ["monitoring"], kri_limits=[{"kri": "dq_flag_rate", "amber": 1, "red": 2}])
    )
    configs = configs_to_evaluate(SETTINGS, ["S-3"], studies)
    assert configs["S-3"].thresholds["dq_flag_rate"].red == 2.0

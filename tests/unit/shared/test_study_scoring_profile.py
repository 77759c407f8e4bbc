"""The study file's optional scoring_profile (decision 0089)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from trialstream.studies import ScoringProfile, StudyDefinition, StudyFileError, load_study

BASE: dict[str, Any] = {
    "study_id": "S-profile",
    "title": "A study",
    "sponsor": "A sponsor",
    "sites": [{"id": "a", "timezone": "UTC"}],
    "modules": ["ingest", "anomaly"],
}


def test_absent_profile_keeps_the_digest_of_older_files() -> None:
    study = StudyDefinition.model_validate(BASE)
    assert study.scoring_profile is None
    assert "scoring_profile" not in study.canonical()
    chosen = StudyDefinition.model_validate({**BASE, "scoring_profile": "device-mix"})
    assert chosen.scoring_profile is ScoringProfile.DEVICE_MIX
    assert chosen.digest() != study.digest()  # choosing is a change, even of the default
    assert StudyDefinition.model_validate_json(chosen.model_dump_json()) == chosen


def test_an_unknown_profile_is_refused_naming_the_field_and_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(
        "\n".join(
            [
                "study_id: S-profile",
                "title: A study",
                "sponsor: A sponsor",
                "sites: [{id: a, timezone: UTC}]",
                "modules: [ingest, anomaly]",
                "scoring_profile: news3",
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(StudyFileError) as refused:
        load_study(path)
    (problem,) = refused.value.problems
    assert problem.startswith("scoring_profile: ")
    assert "'device-mix' or 'classic'" in problem
    path.write_text(path.read_text().replace("news3", "classic"), encoding="utf-8")
    assert load_study(path).scoring_profile is ScoringProfile.CLASSIC

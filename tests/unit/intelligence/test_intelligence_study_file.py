"""The study file's optional eligibility and enrollment blocks: problems named by field,
and definitions without them keep their digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from trialstream.studies import StudyDefinition, StudyFileError, load_study

EXAMPLES = Path(__file__).resolve().parents[3] / "deploy" / "studies"
BASE: dict[str, Any] = {
    "study_id": "S-1",
    "title": "T",
    "sponsor": "Sp",
    "sites": [{"id": "a", "timezone": "UTC"}],
    "modules": ["ingest"],
}


def problems(tmp_path: Path, **blocks: Any) -> list[str]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**BASE, **blocks}))
    with pytest.raises(StudyFileError) as refused:
        load_study(path)
    return refused.value.problems


def test_the_example_studies_declare_criteria_and_targets() -> None:
    for name in ("cardio-hf.yaml", "sleep-athletes.yaml"):
        study = load_study(EXAMPLES / name)
        assert study.eligibility is not None
        assert study.enrollment is not None
        assert all(c.text for c in study.eligibility.criteria)


def test_a_lab_criterion_without_its_unit_is_named_by_its_path(tmp_path: Path) -> None:
    lab = {"id": "bnp", "kind": "lab", "text": "BNP", "min": 1,
           "codes": [{"system": "http://loinc.org", "code": "33762-6"}]}  # fmt: skip
    found = problems(tmp_path, eligibility={"version": 1, "criteria": [lab]})
    assert found == ["eligibility.criteria[0].lab.unit: Field required"]


def test_an_empty_range_a_repeated_id_and_an_unknown_kind_are_refused(tmp_path: Path) -> None:
    age = {"id": "age", "kind": "age", "text": "Age", "min": 80, "max": 18}
    found = problems(tmp_path, eligibility={"version": 1, "criteria": [age]})
    assert "min (80) is above max (18)" in found[0]
    ok = {"id": "age", "kind": "age", "text": "Age", "min": 18}
    found = problems(tmp_path, eligibility={"version": 1, "criteria": [ok, ok]})
    assert "repeated: age" in found[0]
    found = problems(tmp_path, eligibility={"version": 1, "criteria": [{**ok, "kind": "bmi"}]})
    assert found[0].startswith("eligibility.criteria[0]")


def test_a_target_for_a_site_the_study_does_not_have_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, enrollment={"target": 10, "sites": [{"site": "z", "target": 5}]})
    assert "site 'z' is not one of the study's sites" in found[0]


def test_a_definition_without_the_blocks_keeps_its_digest() -> None:
    plain = StudyDefinition.model_validate(BASE)
    assert "eligibility" not in plain.canonical()
    assert "enrollment" not in plain.canonical()
    planned = StudyDefinition.model_validate({**BASE, "enrollment": {"target": 10}})
    assert planned.digest() != plain.digest()

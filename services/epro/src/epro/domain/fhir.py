"""FHIR R4 Questionnaire and QuestionnaireResponse export, checked with fhir.resources.

fhir.resources (pydantic 2 line) models R4B (4.3), not 4.0.1; Questionnaire and
QuestionnaireResponse did not change between R4 and R4B, so a resource that passes
the R4B model is a valid R4 resource (decision 0013). Translations use FHIR's
`translation` extension on the text element.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse as FhirQuestionnaireResponse,
)

from epro.domain.definitions import Condition, Item, ItemType, Questionnaire, Text
from epro.domain.responses import ResponseVersion

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
PARTICIPANTS = "urn:trialstream:participant"
RESPONSES = "urn:trialstream:questionnaire-response"

_TYPES = {
    ItemType.SINGLE_CHOICE: "choice",
    ItemType.MULTIPLE_CHOICE: "choice",
    ItemType.RATING: "integer",
    ItemType.INTEGER: "integer",
    ItemType.YES_NO: "boolean",
    ItemType.DATE: "date",
    ItemType.TEXT: "text",
}


def canonical(q: Questionnaire) -> str:
    return f"urn:trialstream:questionnaire:{q.id}"


def _text(text: Text, lang: str) -> tuple[str, dict[str, Any]]:
    """The default-language text and its `_text` element with the other translations."""
    others = [
        {
            "url": TRANSLATION,
            "extension": [
                {"url": "lang", "valueCode": other},
                {"url": "content", "valueString": value},
            ],
        }
        for other, value in sorted(text.items())
        if other != lang
    ]
    return text[lang], ({"extension": others} if others else {})


def _enable_when(q: Questionnaire, cond: Condition) -> dict[str, Any]:
    source = q.item(cond.item)
    assert source is not None  # definitions are checked when loaded
    out: dict[str, Any] = {"question": cond.item, "operator": str(cond.operator)}
    if source.type in (ItemType.SINGLE_CHOICE, ItemType.MULTIPLE_CHOICE):
        out["answerCoding"] = {"system": canonical(q), "code": str(cond.answer)}
    elif source.type is ItemType.YES_NO:
        out["answerBoolean"] = bool(cond.answer)
    elif source.type in (ItemType.RATING, ItemType.INTEGER):
        out["answerInteger"] = int(cond.answer)
    else:
        out["answerString"] = str(cond.answer)
    return out


def _item(q: Questionnaire, item: Item, lang: str) -> dict[str, Any]:
    text, text_ext = _text(item.text, lang)
    out: dict[str, Any] = {
        "linkId": item.link_id,
        "type": _TYPES[item.type],
        "text": text,
        "required": item.required,
    }
    if text_ext:
        out["_text"] = text_ext
    if item.type is ItemType.MULTIPLE_CHOICE:
        out["repeats"] = True
    if item.options:
        out["answerOption"] = [
            {"valueCoding": {"system": canonical(q), "code": o.code, "display": o.text[lang]}}
            for o in item.options
        ]
    if item.min is not None and item.max is not None:
        out["extension"] = [
            {"url": MIN_VALUE, "valueInteger": item.min},
            {"url": MAX_VALUE, "valueInteger": item.max},
        ]
    if item.type is ItemType.TEXT:
        out["maxLength"] = item.max_length
    if item.enable_when:
        out["enableWhen"] = [_enable_when(q, c) for c in item.enable_when]
        if len(item.enable_when) > 1:
            out["enableBehavior"] = item.enable_behavior
    return out


def questionnaire(q: Questionnaire) -> dict[str, Any]:
    lang = q.languages[0]
    title, title_ext = _text(q.title, lang)
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": f"{q.id}-v{q.version}",
        "url": canonical(q),
        "version": str(q.version),
        "name": "".join(ch for ch in q.id.title() if ch.isalnum()),
        "title": title,
        "status": "active",
        "language": lang,
        "item": [_item(q, i, lang) for i in q.items],
    }
    if title_ext:
        resource["_title"] = title_ext
    return FhirQuestionnaire.model_validate(resource).model_dump(mode="json", exclude_none=True)


def _answers(q: Questionnaire, link_id: str, value: Any) -> list[dict[str, Any]]:
    item = q.item(link_id)
    assert item is not None
    if item.type in (ItemType.SINGLE_CHOICE, ItemType.MULTIPLE_CHOICE):
        codes = value if isinstance(value, list) else [value]
        by_code = {o.code: o for o in item.options}
        return [
            {
                "valueCoding": {
                    "system": canonical(q),
                    "code": c,
                    "display": by_code[c].text[q.languages[0]],
                }
            }
            for c in codes
        ]
    key = {
        ItemType.RATING: "valueInteger",
        ItemType.INTEGER: "valueInteger",
        ItemType.YES_NO: "valueBoolean",
        ItemType.DATE: "valueDate",
        ItemType.TEXT: "valueString",
    }[item.type]
    return [{key: value}]


def questionnaire_response(q: Questionnaire, row: ResponseVersion) -> dict[str, Any]:
    """One stored response version; version > 1 is `amended` (a correction)."""
    answers = row.answers
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": f"{row.response_id}-v{row.version}",
        "meta": {"versionId": str(row.version)},
        "identifier": {"system": RESPONSES, "value": str(row.response_id)},
        "questionnaire": f"{canonical(q)}|{q.version}",
        "status": "completed" if row.version == 1 else "amended",
        "subject": {"identifier": {"system": PARTICIPANTS, "value": row.participant_id}},
        "authored": row.authored_at.isoformat(),
        "language": row.language,
        "item": [
            {"linkId": i.link_id, "answer": _answers(q, i.link_id, answers[i.link_id])}
            for i in q.items
            if answers.get(i.link_id) is not None
        ],
    }
    return FhirQuestionnaireResponse.model_validate(resource).model_dump(
        mode="json", exclude_none=True
    )


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:trialstream:{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }
    return Bundle.model_validate(body).model_dump(mode="json", exclude_none=True)

"""The consent domain, pure: document hashes, comprehension, scopes over time, the signed
copy and the FHIR Consent resource."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from consent.domain import fhir, scopes
from consent.domain.copy import signed_copy
from consent.domain.documents import DocumentBody, NewDocument, grade
from consent.domain.records import Signature
from pydantic import ValidationError
from trialstream.events.consents import ConsentScope, ConsentState

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
W, E, V = ConsentScope.WEARABLE, ConsentScope.EPRO, ConsentScope.TELEHEALTH


def body(**changes: Any) -> DocumentBody:
    doc: dict[str, Any] = {
        "format": "markdown",
        "title": "Consent",
        "sections": [
            {"id": "purpose", "title": "Purpose", "body": "Why we do this study."},
            {"id": "data", "title": "Your data", "body": "What we collect."},
        ],
        "scopes": ["wearable", "epro"],
        "questions": [
            {
                "id": "q1",
                "section": "data",
                "text": "Can you stop?",
                "options": ["no", "yes"],
                "answer": 1,
            }
        ],
    }
    doc.update(changes)
    return DocumentBody.model_validate(doc)


def test_the_hash_pins_every_word_and_the_answers() -> None:
    first = body()
    assert first.sha256() == body().sha256()
    assert len(first.sha256()) == 64
    edited = body(title="Consent form")
    assert edited.sha256() != first.sha256()
    other_answer = body(
        questions=[
            {
                "id": "q1",
                "section": "data",
                "text": "Can you stop?",
                "options": ["no", "yes"],
                "answer": 0,
            }
        ]
    )
    assert other_answer.sha256() != first.sha256()


def test_the_app_never_sees_the_right_answers() -> None:
    shown = body().shown()
    assert shown["questions"] == [
        {"id": "q1", "section": "data", "text": "Can you stop?", "options": ["no", "yes"]}
    ]


def test_a_wrong_answer_shows_its_section_again() -> None:
    assert grade(body(), {"q1": 0}) == (["q1"], ["data"])
    assert grade(body(), {}) == (["q1"], ["data"])
    assert grade(body(), {"q1": 1}) == ([], [])


@pytest.mark.parametrize(
    "change",
    [
        {
            "questions": [
                {"id": "q1", "section": "nowhere", "text": "?", "options": ["a", "b"], "answer": 0}
            ]
        },
        {
            "questions": [
                {"id": "q1", "section": "data", "text": "?", "options": ["a", "b"], "answer": 2}
            ]
        },
        {"scopes": ["wearable", "wearable"]},
        {"scopes": ["telepathy"]},
        {"format": "pdf"},
    ],
)
def test_a_document_that_does_not_hold_together_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        body(**change)


def test_an_amendment_needs_a_deadline_and_only_an_amendment_has_one() -> None:
    base = {**body().model_dump(mode="json"), "study_id": "S1", "version": 2, "language": "en"}
    with pytest.raises(ValidationError, match="reconsent_by"):
        NewDocument.model_validate({**base, "requires_reconsent": True})
    with pytest.raises(ValidationError, match="reconsent_by"):
        NewDocument.model_validate({**base, "reconsent_by": "2026-05-01"})
    ok = NewDocument.model_validate(
        {**base, "requires_reconsent": True, "reconsent_by": "2026-05-01"}
    )
    assert ok.body().sha256() == body().sha256()  # the deadline is not part of the text


def sign(before: ConsentState | None, chosen: list[ConsentScope], at: datetime) -> ConsentState:
    return scopes.signed(
        before,
        participant_id="P-1",
        study_id="S1",
        site_id="site-a",
        scopes=chosen,
        at=at,
        version=1 if before is None else 2,
        sha256="a" * 64,
        language="en",
    )


def test_signing_starts_the_chosen_scopes_at_the_server_time() -> None:
    state = sign(None, [W, E], T0)
    assert state.revision == 1
    assert state.change == "signed"
    assert [(s.scope, s.since, s.until) for s in state.scopes] == [(W, T0, None), (E, T0, None)]
    assert scopes.in_force(state) == [W, E]


def test_reconsent_keeps_the_start_of_scopes_still_chosen_and_ends_the_others() -> None:
    later = T0 + timedelta(days=30)
    state = sign(sign(None, [W, E], T0), [W, V], later)
    assert state.revision == 2
    got = {s.scope: (s.since, s.until) for s in state.scopes}
    assert got == {W: (T0, None), E: (T0, later), V: (later, None)}


def test_partial_withdrawal_ends_one_scope_and_full_withdrawal_all() -> None:
    signed = sign(None, [W, E], T0)
    at = T0 + timedelta(days=3)
    partial = scopes.withdrawn(signed, [W], at)
    assert partial.change == "scope_withdrawn"
    assert partial.withdrawn_at is None
    assert scopes.in_force(partial) == [E]
    assert partial.scope(W) is not None
    assert partial.scope(W).until == at
    assert partial.scope(W).covers(at - timedelta(seconds=1))  # type: ignore[union-attr]
    assert not partial.scope(W).covers(at + timedelta(seconds=1))  # type: ignore[union-attr]
    full = scopes.withdrawn(partial, None, at + timedelta(days=1))
    assert full.change == "withdrawn"
    assert full.withdrawn_at == at + timedelta(days=1)
    assert scopes.in_force(full) == []
    assert full.revision == 3
    assert full.scope(W).until == at  # type: ignore[union-attr]  # the first end stands


def test_withdrawing_the_last_scope_is_a_full_withdrawal() -> None:
    last = scopes.withdrawn(sign(None, [W], T0), [W], T0 + timedelta(hours=1))
    assert last.change == "withdrawn"
    assert last.withdrawn_at == T0 + timedelta(hours=1)


def test_a_scope_is_not_covered_before_it_was_given() -> None:
    state = sign(None, [W], T0)
    assert not state.scope(W).covers(T0 - timedelta(seconds=1))  # type: ignore[union-attr]
    assert state.scope(E) is None


def test_reconsent_due_and_countersignature_are_new_revisions() -> None:
    state = sign(None, [W], T0)
    due = scopes.reconsent_due(state, 2, date(2026, 4, 1), T0)
    assert (due.revision, due.change, due.reconsent_version) == (2, "reconsent_due", 2)
    assert due.event_id != state.event_id
    counter = scopes.countersigned(due, T0)
    assert counter.countersigned
    assert counter.revision == 3


def signature(**changes: Any) -> Signature:
    fields: dict[str, Any] = {
        "signature_id": uuid.uuid4(),
        "participant_id": "P-1",
        "study_id": "S1",
        "site_id": "site-a",
        "version": 1,
        "language": "en",
        "document_sha256": body().sha256(),
        "scopes": ("wearable", "epro"),
        "meaning": "I agree",
        "signed_at": T0,
    }
    fields.update(changes)
    return Signature(**fields)


def test_the_signed_copy_names_the_hash_and_escapes_the_text() -> None:
    doc = body(
        sections=[{"id": "s", "title": "<b>Title</b>", "body": "<script>x()</script>"}],
        questions=[],
    )
    page = signed_copy(doc, signature(document_sha256=doc.sha256()), "S1")
    assert doc.sha256() in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "pending" in page  # no countersignature yet
    html = body(
        format="html",
        sections=[{"id": "s", "title": "T", "body": "<p onclick=x>Hi</p>"}],
        questions=[],
    )
    page = signed_copy(html, signature(), "S1")
    assert '<iframe sandbox="" srcdoc="&lt;p onclick=x&gt;Hi&lt;/p&gt;">' in page


def test_the_fhir_consent_has_the_scopes_as_provisions_and_the_countersignature() -> None:
    state = scopes.withdrawn(sign(None, [W, E], T0), [W], T0 + timedelta(days=1))
    sig = signature(countersigned_by="staff:inv-1", countersigned_at=T0 + timedelta(hours=1))
    resource = fhir.consent_resource(sig, state)
    assert resource["resourceType"] == "Consent"
    assert resource["status"] == "active"
    assert resource["patient"]["identifier"]["value"] == "P-1"
    assert resource["scope"]["coding"][0]["code"] == "research"
    nested = {
        p["code"][0]["coding"][0]["code"]: p["type"] for p in resource["provision"]["provision"]
    }
    assert nested == {"wearable": "deny", "epro": "permit"}
    assert resource["verification"][0]["verified"] is True
    assert resource["sourceReference"]["extension"][0]["valueString"] == body().sha256()
    withdrawn = fhir.consent_resource(sig, scopes.withdrawn(state, None, T0 + timedelta(days=2)))
    assert withdrawn["status"] == "inactive"
    assert withdrawn["provision"]["type"] == "deny"
    assert fhir.bundle([resource])["entry"][0]["resource"]["id"] == str(sig.signature_id)

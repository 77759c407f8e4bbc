"""A participant's consent over time, one scope at a time (decision 0080). Pure.

Each change produces the participant's whole next `ConsentState` (the consents topic is
compacted: the latest record is the state), its revision one higher.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from uuid import uuid4

from trialstream.events.consents import ConsentScope, ConsentState, ScopeConsent


def signed(
    before: ConsentState | None,
    *,
    participant_id: str,
    study_id: str,
    site_id: str,
    scopes: Iterable[ConsentScope],
    at: datetime,
    version: int,
    sha256: str,
    language: str,
) -> ConsentState:
    """After a signature: the scopes signed for are in force (those already in force
    keep their start, so re-consent to an amendment leaves no gap); scopes in force
    that this signature leaves out end now."""
    chosen = set(scopes)
    current = {s.scope: s for s in (before.scopes if before else ())}
    out: list[ScopeConsent] = []
    for scope in ConsentScope:
        was = current.get(scope)
        if scope in chosen:
            keep = was is not None and was.until is None
            out.append(was if keep and was else ScopeConsent(scope=scope, since=at))
        elif was is not None:
            out.append(was if was.until is not None else was.model_copy(update={"until": at}))
    return ConsentState(
        participant_id=participant_id,
        study_id=study_id,
        site_id=site_id,
        revision=(before.revision if before else 0) + 1,
        change="signed",
        scopes=tuple(out),
        document_version=version,
        document_sha256=sha256,
        language=language,
        countersigned=False,
        occurred_at=at,
    )


def withdrawn(
    before: ConsentState, scopes: Iterable[ConsentScope] | None, at: datetime
) -> ConsentState:
    """After a withdrawal of `scopes` (None: every scope, a full withdrawal)."""
    ending = set(ConsentScope) if scopes is None else set(scopes)
    out = tuple(
        s.model_copy(update={"until": at}) if s.scope in ending and s.until is None else s
        for s in before.scopes
    )
    full = scopes is None or not any(s.until is None for s in out)
    return before.model_copy(
        update={
            "revision": before.revision + 1,
            "change": "withdrawn" if full else "scope_withdrawn",
            "scopes": out,
            "withdrawn_at": at if full else None,
            "occurred_at": at,
            "event_id": uuid4(),
        }
    )


def countersigned(before: ConsentState, at: datetime) -> ConsentState:
    return before.model_copy(
        update={
            "revision": before.revision + 1,
            "change": "countersigned",
            "countersigned": True,
            "occurred_at": at,
            "event_id": uuid4(),
        }
    )


def reconsent_due(before: ConsentState, version: int, by: date, at: datetime) -> ConsentState:
    return before.model_copy(
        update={
            "revision": before.revision + 1,
            "change": "reconsent_due",
            "reconsent_version": version,
            "reconsent_by": by,
            "occurred_at": at,
            "event_id": uuid4(),
        }
    )


def in_force(state: ConsentState | None) -> list[ConsentScope]:
    return [] if state is None else [s.scope for s in state.scopes if s.until is None]

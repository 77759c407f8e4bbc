"""In a study that enables the consent module, ePRO stores an answer only under the
participant's `epro` consent at the time it was authored (403 `consent_required`), as
the consents topic announces it (real broker and PostgreSQL; decision 0080)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from epro_support import Epro, phq9_body, publish
from helpers import announce_study, eventually, unique_id
from trialstream.events.consents import ConsentScope, ConsentState, ScopeConsent
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


def consent(participant: str, study: str, revision: int, *scopes: ScopeConsent) -> ConsentState:
    return ConsentState(
        participant_id=participant,
        study_id=study,
        site_id="site-a",
        revision=revision,
        change="signed",
        scopes=scopes,
    )


async def test_answers_need_the_epro_consent_in_force_when_they_were_authored(epro: Epro) -> None:
    study = unique_id("CONSENT")
    await announce_study(epro.kafka, study, ["ingest", "epro", "consent"], ["site-a"])
    participant, app = await epro.enroll(site="site-a", study=study)

    refused = await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "consent_required"
    assert refused.json()["error"]["details"][0]["scope"] == "epro"

    now = datetime.now(UTC)
    wearable_only = ScopeConsent(scope=ConsentScope.WEARABLE, since=now - timedelta(hours=2))
    epro_now = ScopeConsent(scope=ConsentScope.EPRO, since=now)
    await publish(
        epro.kafka,
        Topic.CONSENTS,
        [(participant, consent(participant, study, 1, wearable_only, epro_now))],
    )

    async def consent_arrived() -> bool:
        rows = await epro.sql(
            "SELECT revision FROM consents WHERE participant_id = $1", participant
        )
        return bool(rows)

    await eventually(consent_arrived)
    before = await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))  # authored 1 min ago
    assert before.json()["error"]["code"] == "consent_required"

    earlier = ScopeConsent(scope=ConsentScope.EPRO, since=now - timedelta(hours=1))
    await publish(
        epro.kafka, Topic.CONSENTS, [(participant, consent(participant, study, 2, earlier))]
    )
    # an older revision re-delivered later changes nothing
    await publish(
        epro.kafka, Topic.CONSENTS, [(participant, consent(participant, study, 1, epro_now))]
    )

    async def stored() -> int | None:
        r = await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))
        return r.status_code if r.status_code == 201 else None

    assert await eventually(stored) == 201


async def test_a_study_without_the_consent_module_is_not_gated(epro: Epro) -> None:
    study = unique_id("NOCONSENT")
    await announce_study(epro.kafka, study, ["ingest", "epro"], ["site-a"])
    _, app = await epro.enroll(site="site-a", study=study)
    r = await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert r.status_code == 201, r.text


async def test_a_pausing_study_refuses_answers_after_a_missed_reconsent_until_signed(
    epro: Epro,
) -> None:
    """Decision 0088: with `after_reconsent_deadline: pause`, an answer authored after the
    deadline day is 403 `reconsent_overdue` (naming the version and the day) until a
    state without the outstanding re-consent arrives (the participant signed)."""
    study = unique_id("PAUSE")
    await announce_study(
        epro.kafka,
        study,
        ["ingest", "epro", "consent"],
        ["site-a"],
        consent={"after_reconsent_deadline": "pause"},
    )
    participant, app = await epro.enroll(site="site-a", study=study)
    since = ScopeConsent(scope=ConsentScope.EPRO, since=datetime.now(UTC) - timedelta(days=30))
    missed = datetime.now(UTC).date() - timedelta(days=2)
    due = consent(participant, study, 2, since).model_copy(
        update={"change": "reconsent_due", "reconsent_version": 2, "reconsent_by": missed}
    )
    await publish(epro.kafka, Topic.CONSENTS, [(participant, due)])

    async def paused() -> dict[str, Any] | None:
        # until the state arrives the answer is refused as never consented
        r = await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))
        error: dict[str, Any] = r.json().get("error") or {}
        return error if error.get("code") == "reconsent_overdue" else None

    error = await eventually(paused)
    assert error["message"].startswith("The study pauses 'epro' after a re-consent deadline")
    assert error["details"][0]["reconsent_version"] == 2
    assert error["details"][0]["reconsent_by"] == missed.isoformat()

    signed = consent(participant, study, 3, since)  # version 2 signed: nothing outstanding
    await publish(epro.kafka, Topic.CONSENTS, [(participant, signed)])

    async def stored() -> int | None:
        r = await epro.submit(app, phq9_body(0, 0, 0, 0, 0, 0, 0, 0, 0))
        return r.status_code if r.status_code == 201 else None

    assert await eventually(stored) == 201

"""In a study that enables the consent module, a video visit is booked only under the
participant's `telehealth` consent (403 `consent_required`), as the consents topic
announces it (real broker and PostgreSQL; decision 0080)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers import announce_study, eventually, unique_id
from staff_tokens import staff_auth
from telehealth_harness import Telehealth
from trialstream.events.consents import ConsentScope, ConsentState, ScopeConsent
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
SUNDAY_0900_BERLIN = datetime(2030, 1, 13, 8, tzinfo=UTC)  # study day 7 of an enrolment at T0


def consent(
    participant: str, study: str, site: str, revision: int, scope: ConsentScope
) -> ConsentState:
    since = datetime.now(UTC) - timedelta(minutes=1)
    return ConsentState(
        participant_id=participant,
        study_id=study,
        site_id=site,
        revision=revision,
        change="signed",
        scopes=(ScopeConsent(scope=scope, since=since),),
    )


async def test_a_video_visit_needs_the_telehealth_consent(telehealth: Telehealth) -> None:
    study = unique_id("CONSENT")
    await announce_study(
        telehealth.kafka,
        study,
        ["ingest", "telehealth", "consent"],
        [telehealth.site],
        timezone="Europe/Berlin",
        visits=[{"name": "Week 1", "day": 7, "type": "video"}],
    )
    (participant,) = await telehealth.enrol(study=study)
    staff_id, _ = await telehealth.staff()
    auth = staff_auth(telehealth.site, "site_staff", study=study)
    visit = await telehealth.visit(participant, auth, "Week 1")

    refused = await telehealth.book(auth, visit["visit_id"], staff_id, SUNDAY_0900_BERLIN)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["details"][0]["scope"] == "telehealth"

    site = telehealth.site
    wearable = consent(participant, study, site, 1, ConsentScope.WEARABLE)
    await telehealth.publish(Topic.CONSENTS, [(participant, wearable)])
    await eventually(
        lambda: telehealth.sql(
            "SELECT revision FROM consents WHERE participant_id = $1", participant
        )
    )
    still = await telehealth.book(auth, visit["visit_id"], staff_id, SUNDAY_0900_BERLIN)
    assert still.json()["error"]["code"] == "consent_required"

    video = consent(participant, study, site, 2, ConsentScope.TELEHEALTH)
    await telehealth.publish(Topic.CONSENTS, [(participant, video)])

    async def booked() -> int | None:
        r = await telehealth.book(auth, visit["visit_id"], staff_id, SUNDAY_0900_BERLIN)
        return r.status_code if r.status_code == 201 else None

    assert await eventually(booked) == 201


async def test_a_pausing_study_books_no_video_visit_after_a_missed_reconsent(
    telehealth: Telehealth,
) -> None:
    """Decision 0088: a visit that would happen after the re-consent deadline day is 403
    `reconsent_overdue` in a study whose file says pause; the new signature lifts it."""
    study = unique_id("PAUSE")
    await announce_study(
        telehealth.kafka,
        study,
        ["ingest", "telehealth", "consent"],
        [telehealth.site],
        timezone="Europe/Berlin",
        visits=[{"name": "Week 1", "day": 7, "type": "video"}],
        consent={"after_reconsent_deadline": "pause"},
    )
    (participant,) = await telehealth.enrol(study=study)
    staff_id, _ = await telehealth.staff()
    auth = staff_auth(telehealth.site, "site_staff", study=study)
    visit = await telehealth.visit(participant, auth, "Week 1")
    video = consent(participant, study, telehealth.site, 1, ConsentScope.TELEHEALTH)
    missed = SUNDAY_0900_BERLIN.date() - timedelta(days=1)  # the day before the visit
    due = video.model_copy(
        update={
            "revision": 2,
            "change": "reconsent_due",
            "reconsent_version": 2,
            "reconsent_by": missed,
        }
    )
    await telehealth.publish(Topic.CONSENTS, [(participant, due)])

    async def paused() -> str | None:
        r = await telehealth.book(auth, visit["visit_id"], staff_id, SUNDAY_0900_BERLIN)
        code = r.json().get("error", {}).get("code")
        return code if code == "reconsent_overdue" else None

    assert await eventually(paused) == "reconsent_overdue"
    signed = video.model_copy(update={"revision": 3})  # version 2 signed
    await telehealth.publish(Topic.CONSENTS, [(participant, signed)])

    async def booked() -> int | None:
        r = await telehealth.book(auth, visit["visit_id"], staff_id, SUNDAY_0900_BERLIN)
        return r.status_code if r.status_code == 201 else None

    assert await eventually(booked) == 201

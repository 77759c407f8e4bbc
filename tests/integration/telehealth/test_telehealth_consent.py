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

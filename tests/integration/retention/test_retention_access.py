"""Who may see and change what in retention: the person behind a verified access token and
the permission matrix at the participant's site (README, *Staff identity and
permissions*); the receipt webhook keeps its own credential."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from audit_helpers import audited
from helpers import announce_study, eventually, read_topic, unique_id
from retention_support import NO_QUIET_HOURS, Retention, due_event
from staff_tokens import staff_auth
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Role, SigningKey
from trialstream.settings import ServiceSettings

pytestmark = pytest.mark.integration


def refused(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def sent_nudge(retention: Retention, site: str) -> tuple[str, str]:
    """A participant of `site` with one nudge sent on the local channel: (pid, nudge_id)."""
    pid = await retention.participant(site=site, channel="sms")
    await retention.publish(Topic.EPRO_DUE, [due_event(pid)])
    [nudge] = await retention.nudges_where(pid, 1, status="sent")
    return pid, str(nudge["nudge_id"])


async def test_staff_read_their_sites_nudges_and_tasks_and_not_another_sites(
    retention: Retention,
) -> None:
    site = unique_id("site")
    pid, nudge_id = await sent_nudge(retention, site)
    views = {
        "nudges": f"/v1/participants/{pid}/nudges",
        "nudge": f"/v1/nudges/{nudge_id}",
        "inbox": f"/v1/participants/{pid}/local-inbox",
        "outreach": f"/v1/sites/{site}/outreach",
        "tasks": f"/v1/sites/{site}/tasks",
    }
    nurse, monitor = staff_auth(site, "site_staff"), staff_auth(None, "monitor")
    for who in (nurse, monitor):
        for view, url in views.items():
            r = await retention.client.get(url, headers=who)
            assert r.status_code == 200, (view, r.text)

    stranger = staff_auth(unique_id("site"), "site_staff")
    seen = {
        view: refused(await retention.client.get(url, headers=stranger))
        for view, url in views.items()
    }
    assert seen == {
        # another site's participant and nudge are not confirmed to exist
        "nudges": (404, "unknown_participant"),
        "nudge": (404, "unknown_nudge"),
        "inbox": (404, "unknown_participant"),
        # the site is in the path: naming it is not a leak
        "outreach": (403, "forbidden_site"),
        "tasks": (403, "forbidden_site"),
    }

    sponsor = staff_auth(None, "sponsor")
    for view, url in views.items():
        r = await retention.client.get(url, headers=sponsor)
        assert refused(r) == (403, "role_not_allowed"), view


async def test_preferences_are_set_by_the_participants_site_and_name_the_person(
    retention: Retention,
) -> None:
    site = unique_id("site")
    pid = await retention.participant(site=site)
    url = f"/v1/admin/participants/{pid}/preferences"
    body = {**NO_QUIET_HOURS, "language": "fr", "opted_out": ["push"]}

    stranger = staff_auth(unique_id("site"), "site_staff")
    r = await retention.client.put(url, json=body, headers=stranger)
    assert refused(r) == (404, "unknown_participant")
    for role in ("monitor", "sponsor", "data_manager"):
        r = await retention.client.put(url, json=body, headers=staff_auth(site, role))
        assert refused(r) == (403, "role_not_allowed"), role
    # Preferences may arrive before the enrolment; site staff cannot claim such a
    # participant (only someone covering every site can).
    r = await retention.client.put(
        f"/v1/admin/participants/{unique_id('P')}/preferences",
        json=body,
        headers=staff_auth(site, "site_staff"),
    )
    assert refused(r) == (404, "unknown_participant")

    nurse = staff_auth(site, "site_staff", subject="nurse-7", name="Nora Nurse")
    r = await retention.client.put(url, json=body, headers=nurse)
    assert r.status_code == 200, r.text
    last = (await audited(retention.database_url, "retention", "preferences", pid))[-1]
    assert (last["actor"], last["action"], last["actor_detail"]) == (
        "staff:nurse-7",
        "preferences.set",
        {"name": "Nora Nurse", "role": "site_staff", "study": "default"},
    )
    assert last["new"]["opted_out"] == ["push"]


async def test_tokens_not_from_the_issuer_are_refused_and_receipts_keep_their_credential(
    retention: Retention,
) -> None:
    site = unique_id("site")
    pid, nudge_id = await sent_nudge(retention, site)
    defaults = ServiceSettings()
    forged = SigningKey.generate().issue(
        issuer=defaults.oidc_issuer,
        audience=defaults.oidc_audience,
        subject="mallory",
        name="Mallory",
        grants=[Grant(Role.PLATFORM_ADMIN, None)],
    )
    r = await retention.client.get(
        f"/v1/participants/{pid}/nudges", headers={"Authorization": f"Bearer {forged}"}
    )
    assert refused(r) == (401, "invalid_token")
    anonymous = await retention.client.get(f"/v1/sites/{site}/tasks")
    assert anonymous.status_code == 401

    # A staff access token is not a channel gateway's credential.
    r = await retention.client.post(
        f"/v1/nudges/{nudge_id}/receipts",
        json={"status": "delivered"},
        headers=staff_auth(site, "site_staff"),
    )
    assert refused(r) == (401, "invalid_credentials")


async def test_participants_of_a_study_without_retention_are_skipped(retention: Retention) -> None:
    study = unique_id("S")
    await announce_study(retention.kafka, study, ["ingest", "monitoring"], ["site-1"])
    skipped, kept = unique_id("P"), unique_id("P")
    await retention.publish(
        Topic.PARTICIPANTS,
        [
            ParticipantState(participant_id=skipped, site_id="site-1", study_id=study),
            ParticipantState(participant_id=kept, site_id="site-1"),
        ],
    )
    await eventually(
        lambda: retention.sql("SELECT 1 FROM participants WHERE participant_id = $1", kept)
    )
    assert not await retention.sql("SELECT 1 FROM participants WHERE participant_id = $1", skipped)
    # Their triggers carry no study: the skipped participant's questionnaire is not nudged.
    await eventually(
        lambda: retention.sql(
            "SELECT 1 FROM participants_elsewhere WHERE participant_id = $1", skipped
        )
    )
    await retention.publish(Topic.EPRO_DUE, [due_event(skipped), due_event(kept)])
    nudged = "SELECT 1 FROM nudges WHERE participant_id = $1"
    await eventually(lambda: retention.sql(nudged, kept))
    assert not await retention.sql(nudged, skipped)


async def test_a_participant_of_a_study_never_announced_is_dead_lettered_not_stalling(
    retention: Retention,
) -> None:
    bogus, kept = unique_id("P"), unique_id("P")
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    await retention.publish(
        Topic.PARTICIPANTS,
        [
            ParticipantState(
                participant_id=bogus, site_id="site-1", study_id="NEVER", occurred_at=long_ago
            ),
            ParticipantState(participant_id=kept, site_id="site-1"),
        ],
    )
    await eventually(
        lambda: retention.sql("SELECT 1 FROM participants WHERE participant_id = $1", kept)
    )
    letters = await read_topic(
        retention.kafka, Topic.DEAD_LETTER, match=lambda v: v.get("key") == bogus
    )
    assert letters
    assert "no study NEVER was announced" in letters[0]["reason"]

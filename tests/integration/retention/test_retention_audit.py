"""Retention's state changes are audited: preferences and opt-outs (never the channel
address), and a coordinator task from opened (by the system) to done."""

from __future__ import annotations

import pytest
from audit_helpers import audited, changes
from helpers import announce_study, eventually, unique_id
from retention_support import AUTH, NO_QUIET_HOURS, Retention, missed_in_a_row
from staff_tokens import staff_auth
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


async def test_preference_changes_and_opt_outs_are_audited_without_the_address(
    retention: Retention,
) -> None:
    pid = await retention.participant(channel="sms", address="+15550100")
    url = f"/v1/admin/participants/{pid}/preferences"
    body = {**NO_QUIET_HOURS, "channel": "sms", "address": "+15550199", "opted_out": ["sms"]}
    assert (await retention.client.put(url, json=body, headers=AUTH)).status_code == 200
    assert (await retention.client.put(url, json=body, headers=AUTH)).status_code == 200  # same

    entries = await audited(retention.database_url, "retention", "preferences", pid)
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("staff:retention-admin", "preferences.set")
    ] * 2
    first, second = entries
    assert first["old"] is None
    assert (first["new"]["channel"], first["new"]["opted_out"], first["new"]["address_set"]) == (
        "sms",
        [],
        True,
    )
    assert (second["old"]["opted_out"], second["new"]["opted_out"]) == ([], ["sms"])
    assert second["new"]["address_changed"] is True
    assert "+1555" not in str(entries)


async def test_a_coordinator_task_is_audited_from_opened_to_done(retention: Retention) -> None:
    site = unique_id("site")
    pid = await retention.participant(site=site)
    misses = missed_in_a_row(pid)
    await retention.publish(Topic.EPRO_MISSED, misses)

    async def open_tasks() -> list[dict[str, str]] | None:
        r = await retention.client.get(f"/v1/sites/{site}/tasks", headers=AUTH)
        return list(r.json()["tasks"]) or None

    (task,) = await eventually(open_tasks)
    url = f"/v1/tasks/{task['task_id']}/complete"
    # Staff of another site neither see the site's tasks nor learn the task exists; a
    # monitor reads them but does not act; the site's coordinator completes it.
    stranger = staff_auth("elsewhere", "site_staff")
    seen = await retention.client.get(f"/v1/sites/{site}/tasks", headers=stranger)
    assert (seen.status_code, seen.json()["error"]["code"]) == (403, "forbidden_site")
    assert (await retention.client.post(url, headers=stranger)).status_code == 404
    monitor = staff_auth(None, "monitor")
    assert (
        await retention.client.get(f"/v1/sites/{site}/tasks", headers=monitor)
    ).status_code == 200
    refused = await retention.client.post(url, headers=monitor)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "role_not_allowed")
    sponsor = staff_auth(None, "sponsor")
    assert (
        await retention.client.get(f"/v1/participants/{pid}/nudges", headers=sponsor)
    ).status_code == 403
    coordinator = staff_auth(site, "site_staff", subject="coord-1", name="Cora Ordinator")
    done = await retention.client.post(url, headers=coordinator)
    assert done.status_code == 200
    again = await retention.client.post(url, headers=coordinator)
    assert again.status_code == 404

    entries = await audited(
        retention.database_url, "retention", "coordinator_task", str(task["task_id"])
    )
    assert changes(entries) == [
        (
            "system:retention",
            "task.opened",
            None,
            {"status": "open", "participant_id": pid, "kind": "epro-missed"},
        ),
        ("staff:coord-1", "task.completed", {"status": "open"}, {"status": "done"}),
    ]
    assert entries[-1]["actor_detail"] == {
        "name": "Cora Ordinator",
        "role": "site_staff",
        "study": "default",
    }
    assert "3 questionnaires missed in a row" in entries[0]["reason"]


async def test_a_sites_tasks_are_listed_per_study(retention: Retention) -> None:
    site, study = unique_id("site"), unique_id("S")
    await announce_study(retention.kafka, study, ["ingest", "epro", "retention"], [site])
    ours = await retention.participant(site=site, study=study)
    default = await retention.participant(site=site)
    await retention.publish(Topic.EPRO_MISSED, [*missed_in_a_row(ours), *missed_in_a_row(default)])
    study_staff = staff_auth(site, "site_staff", study=study)

    async def listed(auth: dict[str, str]) -> list[str] | None:
        r = await retention.client.get(f"/v1/sites/{site}/tasks", headers=auth)
        assert r.status_code == 200, r.text
        return [t["participant_id"] for t in r.json()["tasks"]] or None

    assert await eventually(lambda: listed(study_staff)) == [ours]
    assert await eventually(lambda: listed(staff_auth(site, "site_staff"))) == [default]

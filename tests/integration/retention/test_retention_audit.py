"""Retention's state changes are audited: preferences and opt-outs (never the channel
address), and a coordinator task from opened (by the system) to done."""

from __future__ import annotations

import pytest
from audit_helpers import audited, changes
from helpers import eventually, unique_id
from retention_support import AUTH, NO_QUIET_HOURS, Retention, missed_in_a_row
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
    assert [(e["actor"], e["action"]) for e in entries] == [("admin", "preferences.set")] * 2
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
    done = await retention.client.post(f"/v1/tasks/{task['task_id']}/complete", headers=AUTH)
    assert done.status_code == 200
    again = await retention.client.post(f"/v1/tasks/{task['task_id']}/complete", headers=AUTH)
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
        ("admin", "task.completed", {"status": "open"}, {"status": "done"}),
    ]
    assert "3 questionnaires missed in a row" in entries[0]["reason"]

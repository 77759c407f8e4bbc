"""Studies with enrolments on the participants topic, for the portfolio's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import announce_study, publish_to, unique_id
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic


async def enrolled_study(kafka: str, counts: dict[str, int]) -> tuple[str, list[str]]:
    """A study open 100 days whose sites enrolled `counts`; returns it and the ids."""
    study = unique_id("S")
    opened = (datetime.now(UTC) - timedelta(days=100)).date().isoformat()
    plan = {"target": 200, "start": opened}
    await announce_study(kafka, study, ["ingest"], list(counts), enrollment=plan)
    now = datetime.now(UTC)
    events, ids = [], []
    for site, n in counts.items():
        for i in range(n):
            pid = unique_id("P")
            ids.append(pid)
            state = ParticipantState(
                participant_id=pid, study_id=study, site_id=site,
                occurred_at=now - timedelta(days=95 - 4 * i),
            )  # fmt: skip
            events.append((pid, state))
    await publish_to(kafka, Topic.PARTICIPANTS, events)
    return study, ids

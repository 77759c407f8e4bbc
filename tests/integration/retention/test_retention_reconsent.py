"""A protocol amendment's call for re-consent (`reconsent_due` on the consents topic)
becomes one nudge per version in the participant's language (real broker and PostgreSQL;
decision 0081)."""

from __future__ import annotations

from datetime import date

import pytest
from retention_support import Retention
from trialstream.events.consents import ConsentState
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration


def due(pid: str, revision: int, change: str = "reconsent_due") -> ConsentState:
    return ConsentState(
        participant_id=pid,
        site_id="site-r",
        revision=revision,
        change=change,  # type: ignore[arg-type]
        reconsent_version=2,
        reconsent_by=date(2099, 3, 31),
    )


async def test_reconsent_due_is_nudged_once_in_the_participants_language(
    retention: Retention,
) -> None:
    pid = await retention.participant(language="de")
    # a signature is not a trigger; the call for re-consent is, once per version
    await retention.publish(Topic.CONSENTS, [due(pid, 1, "signed"), due(pid, 2), due(pid, 3)])
    [nudge] = await retention.nudges_where(pid, 1, kind="reconsent-due", status="sent")
    assert nudge["language"] == "de"
    assert "2099-03-31" in nudge["body"]
    assert nudge["body"].startswith("Die Studieninformation wurde aktualisiert")
    assert [n["kind"] for n in await retention.nudges(pid)] == ["reconsent-due"]

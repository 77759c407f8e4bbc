"""Anomaly's part of an erasure (issue 18, decision 0086): the participant's checkpoint
(their personal baseline and rhythm, a profile derived from their readings) is deleted
whatever the study keeps: it is working state, not data collected for the trial. The
alerts it raised stay when the study keeps collected data (the safety record), else
they are deleted."""

from __future__ import annotations

from trialstream.db import DbConnection
from trialstream.events.erasures import ErasureRequested


def _count(status: str) -> int:
    return int(status.split()[-1])


async def erase(conn: DbConnection, request: ErasureRequested) -> dict[str, int]:
    pid = request.participant_id
    erased = {
        "checkpoints": _count(
            await conn.execute("DELETE FROM participant_state WHERE participant_id = $1", pid)
        )
    }
    if not request.keep_collected_data:
        erased["alerts"] = _count(
            await conn.execute("DELETE FROM alerts WHERE participant_id = $1", pid)
        )
    return erased

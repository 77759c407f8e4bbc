"""Monitoring's part of an erasure (issue 18, decision 0086): what staff wrote about the
participant's alerts (acknowledgement and episode-end notes, resolution reasons) is
replaced by a tombstone; the alerts themselves (times, rules, severities, statuses) stay
as the safety record. When the study keeps no collected data, the participant's
timeline, reading roll-ups and risk-based-monitoring rows are deleted as well."""

from __future__ import annotations

from trialstream.db import DbConnection
from trialstream.events.erasures import ErasureRequested

ERASED = "[erased]"
_NOTES = """
UPDATE alerts
SET ack_note = CASE WHEN ack_note IS NULL THEN NULL ELSE $2 END,
    episode_end_note = CASE WHEN episode_end_note IS NULL THEN NULL ELSE $2 END,
    resolution_reason = CASE WHEN resolution_reason IS NULL THEN NULL ELSE $2 END
WHERE participant_id = $1
  AND (ack_note <> $2 OR episode_end_note <> $2 OR resolution_reason <> $2)
"""
_DERIVED = (
    "timeline_events",
    "reading_rollups",
    "rbm_wear_slots",
    "rbm_devices",
    "rbm_last_readings",
)


def _count(status: str) -> int:
    return int(status.split()[-1])


async def erase(conn: DbConnection, request: ErasureRequested) -> dict[str, int]:
    pid = request.participant_id
    erased = {"alert_notes": _count(await conn.execute(_NOTES, pid, ERASED))}
    if not request.keep_collected_data:
        erased["rows_deleted"] = sum(
            [
                _count(await conn.execute(f"DELETE FROM {t} WHERE participant_id = $1", pid))  # noqa: S608 - constant names
                for t in _DERIVED
            ]
        )
    return erased

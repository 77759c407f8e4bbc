"""Telehealth's part of an erasure (issue 18, decision 0086): the participant's calendar
feeds (their secret links) are deleted; the free text of their visits and bookings
(reschedule, cancellation and deviation reasons) and the video room tokens are cleared.
Visit times and statuses stay when the study keeps data collected under consent (they
are the visit record); otherwise the visits and bookings are deleted."""

from __future__ import annotations

from trialstream.db import DbConnection
from trialstream.events.erasures import ErasureRequested

_BOOKINGS = """
UPDATE bookings SET room_token = NULL, reason = NULL, deviation_reason = NULL
WHERE visit_id IN (SELECT visit_id FROM visits WHERE participant_id = $1)
  AND (room_token IS NOT NULL OR reason IS NOT NULL OR deviation_reason IS NOT NULL)
"""
_DELETE = (
    "DELETE FROM reminders_sent WHERE booking_id IN (SELECT booking_id FROM bookings"
    " WHERE visit_id IN (SELECT visit_id FROM visits WHERE participant_id = $1))",
    "DELETE FROM bookings WHERE visit_id IN"
    " (SELECT visit_id FROM visits WHERE participant_id = $1)",
    "DELETE FROM visits WHERE participant_id = $1",
)


def _count(status: str) -> int:
    return int(status.split()[-1])


async def erase(conn: DbConnection, request: ErasureRequested) -> dict[str, int]:
    pid = request.participant_id
    erased = {
        "calendar_feeds": _count(
            await conn.execute(
                "DELETE FROM calendar_feeds WHERE owner_kind = 'participant' AND owner_id = $1",
                pid,
            )
        ),
        "bookings_free_text": _count(await conn.execute(_BOOKINGS, pid)),
        "visits_free_text": _count(
            await conn.execute(
                "UPDATE visits SET cancel_reason = NULL"
                " WHERE participant_id = $1 AND cancel_reason IS NOT NULL",
                pid,
            )
        ),
    }
    if not request.keep_collected_data:
        erased["rows_deleted"] = sum([_count(await conn.execute(sql, pid)) for sql in _DELETE])
    return erased

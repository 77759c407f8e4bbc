"""ePRO's part of an erasure (issue 18, decision 0086).

Always: the participant's app credentials go, and the answers to free-text items
(`type: text` in the questionnaire version answered) are removed from every version of
every response, with the reasons of corrections (free text too). Scores and coded
answers stay when the study keeps data collected under consent; otherwise the
participant's responses, occurrences, assignments and visit anchors are deleted."""

from __future__ import annotations

from trialstream.db import DbConnection
from trialstream.events.erasures import ErasureRequested

_FREE_TEXT = """
UPDATE responses r
SET answers = r.answers - coalesce((
        SELECT array_agg(i ->> 'link_id')
        FROM questionnaires q, jsonb_array_elements(q.definition -> 'items') AS i
        WHERE q.questionnaire_id = r.questionnaire_id AND q.version = r.questionnaire_version
          AND i ->> 'type' = 'text'), '{}'::text[]),
    reason = CASE WHEN r.reason IS NULL THEN NULL ELSE '[erased]' END
WHERE r.participant_id = $1
"""
_DELETE = (
    "DELETE FROM responses WHERE participant_id = $1",
    "DELETE FROM occurrences WHERE participant_id = $1",
    "DELETE FROM assignments WHERE participant_id = $1",
    "DELETE FROM visit_anchors WHERE participant_id = $1",
)


def _count(status: str) -> int:
    return int(status.split()[-1])


async def erase(conn: DbConnection, request: ErasureRequested) -> dict[str, int]:
    pid = request.participant_id
    await conn.execute("SET LOCAL trialstream.erasing = 'on'")  # migration 0007
    erased = {
        "app_credentials": _count(
            await conn.execute("DELETE FROM app_credentials WHERE participant_id = $1", pid)
        ),
        "response_versions_free_text": _count(await conn.execute(_FREE_TEXT, pid)),
    }
    if not request.keep_collected_data:
        erased["rows_deleted"] = sum([_count(await conn.execute(sql, pid)) for sql in _DELETE])
    await conn.execute("SET LOCAL trialstream.erasing = 'off'")
    return erased

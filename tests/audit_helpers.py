"""Reading a service's audit trail in tests: its entries for an entity, after verifying the chain."""

from __future__ import annotations

from typing import Any

import asyncpg
from trialstream import audit
from trialstream.audit_verify import verify_chain


async def audited(
    database_url: str, schema: str, entity: str, entity_id: str | None
) -> list[dict[str, Any]]:
    """The entity's entries (old/new decoded), oldest first; fails if the chain is broken."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        report = await verify_chain(conn, schema)
        assert report.ok, f"{schema} audit chain: {report.broken}"
        found = await audit.entries(conn, entity=entity, entity_id=entity_id)
    finally:
        await conn.close()
    return [e.as_dict() for e in found]


def changes(entries: list[dict[str, Any]]) -> list[tuple[str, str, Any, Any]]:
    """(actor, action, old, new) of each entry: what most assertions compare."""
    return [(e["actor"], e["action"], e["old"], e["new"]) for e in entries]

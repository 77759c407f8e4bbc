"""Closing a discrepancy flag: site staff only, with a note, audited in the same transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from trialstream.errors import Kind, Refused

from monitoring import repository as monitoring_repository
from monitoring.domain import Role, Staff, denied, invalid_transition, may_read
from monitoring.rbm import repository


def check_close(staff: Staff, flag_site: str | None, status: str) -> None:
    """Raise unless `staff` may close a flag of `flag_site` in `status`. Pure."""
    if staff.role is not Role.SITE_STAFF:
        raise denied("read_only_role", "monitors can read flags but not close them")
    if flag_site != staff.site_id:
        raise denied("forbidden_site", "this flag belongs to another site")
    if status != "open":
        raise invalid_transition("already_closed", "the flag has already been closed")


async def close_flag(pool: asyncpg.Pool, staff: Staff, flag_id: UUID, note: str) -> dict[str, Any]:
    """open -> closed with the note, and an audit row, atomically. The row lock makes a
    second, concurrent close see the flag closed (409)."""
    async with pool.acquire() as conn, conn.transaction():
        flag = await repository.lock_flag(conn, flag_id)
        if flag is None or not may_read(staff, flag["site_id"]):
            raise Refused(Kind.NOT_FOUND, "unknown_flag", f"no flag {flag_id} in your sites")
        check_close(staff, flag["site_id"], flag["status"])
        await repository.close_flag(conn, flag_id, staff.staff_id, note)
        await monitoring_repository.audit(
            conn,
            actor=staff.staff_id,
            action="flag.closed",
            entity="flag",
            entity_id=str(flag_id),
            old_status=flag["status"],
            new_status="closed",
            note=note,
        )
        closed = await repository.lock_flag(conn, flag_id)
    assert closed is not None
    return closed

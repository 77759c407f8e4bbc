"""Closing a discrepancy flag: a signed note (step-up), audited in the same transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from trialstream.errors import Kind, Refused
from trialstream.identity import Action
from trialstream.staff import check_step_up, forbidden

from monitoring import repository as monitoring_repository
from monitoring.domain import Staff, invalid_transition, may_read
from monitoring.rbm import repository


def check_close(staff: Staff, flag_site: str | None, status: str, step_up_seconds: float) -> None:
    """Raise unless `staff` may close a flag of `flag_site` in `status`: a role that closes
    flags at that site, signed in within `step_up_seconds` (a Part 11 signature). Pure."""
    if not staff.allows(Action.CLOSE_FLAGS, flag_site):
        raise forbidden(Action.CLOSE_FLAGS, staff.study_id)
    check_step_up(staff.principal, step_up_seconds)
    if status != "open":
        raise invalid_transition("already_closed", "the flag has already been closed")


async def close_flag(
    pool: asyncpg.Pool, staff: Staff, flag_id: UUID, note: str, *, step_up_seconds: float
) -> dict[str, Any]:
    """open -> closed with the note, and an audit row, atomically. The row lock makes a
    second, concurrent close see the flag closed (409)."""
    async with pool.acquire() as conn, conn.transaction():
        flag = await repository.lock_flag(conn, flag_id)
        if flag is not None:
            staff = staff.in_study(flag["study_id"])
        if flag is None or not may_read(staff, flag["site_id"]):
            raise Refused(Kind.NOT_FOUND, "unknown_flag", f"no flag {flag_id} in your sites")
        check_close(staff, flag["site_id"], flag["status"], step_up_seconds)
        await repository.close_flag(conn, flag_id, staff.staff_id, note)
        await monitoring_repository.audit(
            conn,
            actor=staff.actor,
            actor_detail=staff.actor_detail,
            action="flag.closed",
            entity="flag",
            entity_id=str(flag_id),
            old_status=flag["status"],
            new_status="closed",
            note=note,
            typed_about=flag["participant_id"],
        )
        closed = await repository.lock_flag(conn, flag_id)
    assert closed is not None
    return closed

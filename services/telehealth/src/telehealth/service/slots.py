"""Free slots of a site's staff, read from the database and computed by availability.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from trialstream.identity import DEFAULT_STUDY

from telehealth import repository
from telehealth.domain.availability import Slot, free, slots_between
from telehealth.domain.study import SiteZones, no_study_zones
from telehealth.domain.windows import zone
from telehealth.repository import Conn


async def site_timezone(
    conn: Conn, site_id: str, study_id: str = DEFAULT_STUDY, zones: SiteZones = no_study_zones
) -> str:
    """The site's clock for `study_id`: a declared study's file sets it; otherwise (the
    default study, or a study this process has not read yet) the timezone the admin route
    stored, UTC until one is set."""
    return zones(study_id, site_id) or await repository.site_timezone(conn, site_id)


async def offered(
    conn: Conn,
    site_id: str,
    start: datetime,
    end: datetime,
    slot_minutes: int,
    staff_ids: Sequence[str] | None = None,
    *,
    study_id: str = DEFAULT_STUDY,
    zones: SiteZones = no_study_zones,
) -> list[Slot]:
    """Every slot the site's staff (or the given ones) offer in [start, end), booked or not,
    their weekly hours read on the site's clock for the participant's study."""
    tz = zone(await site_timezone(conn, site_id, study_id, zones))
    members = [s["staff_id"] for s in await repository.site_staff(conn, site_id)]
    if staff_ids is not None:
        members = [s for s in members if s in staff_ids]
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    weekly, exceptions = await repository.hours_of(conn, members, first, last)
    found: list[Slot] = []
    for member in members:
        found += slots_between(
            weekly[member], exceptions[member], tz, start, end, slot_minutes, member
        )
    return sorted(found)


async def free_slots(
    conn: Conn,
    site_id: str,
    start: datetime,
    end: datetime,
    slot_minutes: int,
    staff_ids: Sequence[str] | None = None,
    *,
    study_id: str = DEFAULT_STUDY,
    zones: SiteZones = no_study_zones,
) -> list[Slot]:
    candidates = await offered(
        conn, site_id, start, end, slot_minutes, staff_ids, study_id=study_id, zones=zones
    )
    members = sorted({s.staff_id for s in candidates})
    return free(candidates, await repository.busy(conn, members, start, end))

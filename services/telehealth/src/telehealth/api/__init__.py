"""Telehealth's HTTP routes: admin and people (staff, sites, availability, visits, site
schedules, calendar feeds) and bookings (slots, bookings, urgent proposals)."""

from fastapi import APIRouter

from telehealth.api import bookings, people

router = APIRouter()
for part in (people, bookings):
    router.include_router(part.router)

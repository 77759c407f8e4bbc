"""Telehealth's SQL, all of it: `state` (sites, staff, participants, visits, availability,
feeds) and `bookings` (bookings and proposals). Callers use `repository.<function>`."""

from telehealth.repository.bookings import *  # noqa: F403
from telehealth.repository.state import *  # noqa: F403

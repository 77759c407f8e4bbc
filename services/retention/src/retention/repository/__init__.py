"""Retention's SQL, all of it: `state` (participants, preferences, engagement, the nudges a
trigger records and their journey) and `nudges` (delivering them, receipts and the staff
views). Callers use `repository.<function>`."""

from retention.repository.nudges import *  # noqa: F403
from retention.repository.state import *  # noqa: F403

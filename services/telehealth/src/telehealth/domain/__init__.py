"""Telehealth's pure rules: protocol visit windows in the participant's local days, staff
availability, what withdrawal stops, iCalendar rendering. No database, broker or HTTP."""

"""Telehealth's use cases: booking and its lifecycle, enrolment and withdrawal, urgent
visits from alerts, free slots, calendar feeds, the reminder scheduler, the audit of
availability changes."""

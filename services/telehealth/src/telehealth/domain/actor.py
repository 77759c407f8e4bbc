"""Who acts in telehealth: the person behind a verified access token, and what the
permission matrix lets them do at a site. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from trialstream.identity import DEFAULT_STUDY, Action, Principal


@dataclass(frozen=True)
class Actor:
    """A person acting in telehealth (`action`: what the route does, reading or managing
    participants' visits)."""

    principal: Principal
    action: Action = Action.MANAGE_PARTICIPANTS

    @property
    def actor(self) -> str:
        """How the audit trail and a booking's `created_by` name them."""
        return self.principal.actor

    def at(self, site_id: str | None, study_id: str = DEFAULT_STUDY) -> bool:
        """May they do `action` for something of this site, in this study (a participant's,
        for their visits and bookings; site resources such as clinicians and schedules
        are the default study's until they are per study)?"""
        return site_id is not None and self.principal.allows(self.action, study_id, site_id)

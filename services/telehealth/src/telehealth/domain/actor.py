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

    def at_any_study(self, site_id: str | None) -> bool:
        """For the site's own resources (its clinicians, their hours): may they do
        `action` at this site in any study they have a role in?"""
        studies = {g.study_id or DEFAULT_STUDY for g in self.principal.grants}
        return any(self.at(site_id, study) for study in studies)

    def at(self, site_id: str | None, study_id: str = DEFAULT_STUDY) -> bool:
        """May they do `action` for something of this site, in this study (a participant's,
        for their visits and bookings; site resources such as clinicians and schedules
        are the default study's until they are per study)?"""
        return site_id is not None and self.principal.allows(self.action, study_id, site_id)

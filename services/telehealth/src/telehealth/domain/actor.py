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

    def at(self, site_id: str | None) -> bool:
        """May they do `action` for something of this site?"""
        return site_id is not None and self.principal.allows(self.action, DEFAULT_STUDY, site_id)

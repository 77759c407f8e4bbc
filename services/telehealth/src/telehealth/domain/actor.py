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

    @property
    def detail(self) -> dict[str, str]:
        """The audit entry's `actor_detail`: display name and role in the study."""
        roles = sorted(str(r) for r in self.principal.roles(DEFAULT_STUDY))
        return {"name": self.principal.name, "role": ",".join(roles)}

    def at(self, site_id: str | None) -> bool:
        """May they do `action` for something of this site?"""
        return site_id is not None and self.principal.allows(self.action, DEFAULT_STUDY, site_id)

"""What the routes and subscribers share: runtime, settings, booking policy, clock; and the
routes' typed dependencies (`Ctx`, `StaffActor`, `StaffReader`): the person behind a
verified access token (trialstream.staff) and what the matrix lets them do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from trialstream import consent_gate
from trialstream.errors import Kind, Refused
from trialstream.identity import Action
from trialstream.runtime import Runtime
from trialstream.staff import CurrentPrincipal, forbidden

from telehealth.domain.actor import Actor
from telehealth.domain.study import study_site_timezone
from telehealth.service.booking import Policy
from telehealth.settings import TelehealthSettings


@dataclass(frozen=True)
class Context:
    runtime: Runtime
    settings: TelehealthSettings
    clock: Callable[[], datetime]

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @property
    def policy(self) -> Policy:
        return Policy(
            self.settings.slot_minutes,
            self.settings.video_base_url,
            self.site_zones,
            lambda study_id: consent_gate.gated(self.runtime.studies, study_id),
            lambda study_id: consent_gate.pauses(self.runtime.studies, study_id),
        )

    def site_zones(self, study_id: str, site_id: str) -> str | None:
        """The timezone the study file gives the site. None for the default study, and for
        a study this process has not read yet: the caller then uses the timezone stored
        by the admin route (the service's own setting for the site, UTC until set)."""
        return study_site_timezone(self.runtime.studies.get(study_id), site_id)

    @property
    def urgent_horizon(self) -> timedelta:
        return timedelta(hours=self.settings.urgent_horizon_hours)


def context(request: Request) -> Context:
    """FastAPI dependency: the service's Context (app.state.context, set by main)."""
    ctx: Context = request.app.state.context
    return ctx


Ctx = Annotated[Context, Depends(context)]


def _actor(action: Action) -> Any:
    async def acting(principal: CurrentPrincipal) -> Actor:
        if not principal.allows_in_some_study(action):  # a role that never may: 403 first
            raise forbidden(action)
        return Actor(principal, action)

    return Depends(acting)


# Routes that change visits, bookings, availability or feeds (site staff, investigators,
# admins of the participant's site), and routes that only read them (also monitors and
# data managers; never sponsors). Changing a participant's visit plan is managing that
# participant, so it is `manage_participants`, not `act_on_alerts`: both refuse monitors
# and sponsors, but only the former lets a study or platform admin (and the bootstrap
# admin token) book or cancel for a site that has no coordinator on duty.
StaffActor = _actor(Action.MANAGE_PARTICIPANTS)
StaffReader = _actor(Action.READ_PARTICIPANT_DATA)


def same_site(actor: Actor, site_id: str, study_id: str | None = None) -> None:
    """`actor` may act at the site: in `study_id`, or (None: a site resource such as its
    clinicians) in any of their studies."""
    allowed = actor.at_any_study(site_id) if study_id is None else actor.at(site_id, study_id)
    if not allowed:
        raise Refused(Kind.FORBIDDEN, "forbidden_site", f"you have no role at site '{site_id}'")

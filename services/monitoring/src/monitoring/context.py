"""What the routes, pages and subscribers share (runtime, settings, live feed) and the
routes' typed dependencies: `Ctx`, `CurrentStaff`.

Staff authenticate with an access token from the identity issuer (trialstream.staff):
`Authorization: Bearer` or, on the dashboard, the session cookie (HttpOnly,
SameSite=Strict; docs/decisions/0040). A cookie-authenticated write must be JSON: a
cross-site form cannot send that without a CORS preflight we never answer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from trialstream.errors import Kind, Refused
from trialstream.events.base import StudyId
from trialstream.runtime import Runtime
from trialstream.staff import CurrentPrincipal, study_for
from trialstream.studies import Module

from monitoring.domain import AckDeadlines, Staff
from monitoring.live import LiveFeed
from monitoring.rbm.kri import KriConfig
from monitoring.settings import MonitoringSettings


@dataclass(frozen=True)
class Context:
    runtime: Runtime
    settings: MonitoringSettings
    feed: LiveFeed

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @cached_property  # built once from the settings, not per request
    def deadlines(self) -> AckDeadlines:
        return self.settings.ack_deadlines()

    @cached_property
    def kri_config(self) -> KriConfig:
        return self.settings.kri_config()


def context(request: Request) -> Context:
    """FastAPI dependency: the service's Context (app.state.context, set by main)."""
    ctx: Context = request.app.state.context
    return ctx


Ctx = Annotated[Context, Depends(context)]


async def current_staff(
    ctx: Ctx, principal: CurrentPrincipal, study: StudyId | None = None
) -> Staff:
    """The person behind the verified access token (`Authorization: Bearer` or, for the
    dashboard, the session cookie), acting in a study: `?study=`, else their only one. A
    study that does not use monitoring is refused (409 `module_not_enabled`)."""
    acting_in = study_for(principal, study)
    studies = ctx.runtime.studies
    if studies.known(acting_in) and not studies.enables(acting_in, Module.MONITORING):
        raise Refused(
            Kind.CONFLICT,
            "module_not_enabled",
            f"Study '{acting_in}' does not use monitoring.",
        )
    return Staff(principal, acting_in)


CurrentStaff = Annotated[Staff, Depends(current_staff)]

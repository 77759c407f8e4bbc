"""What the routes and subscribers share: runtime, settings, booking policy, clock; and the
routes' typed dependencies (`Ctx`, `StaffActor`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from trialstream.auth import bearer_token, hash_token
from trialstream.errors import Kind, Refused
from trialstream.runtime import Runtime

from telehealth import repository
from telehealth.service.booking import Actor, Policy
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
        return Policy(self.settings.slot_minutes, self.settings.video_base_url)

    @property
    def urgent_horizon(self) -> timedelta:
        return timedelta(hours=self.settings.urgent_horizon_hours)


def context(request: Request) -> Context:
    """FastAPI dependency: the service's Context (app.state.context, set by main)."""
    ctx: Context = request.app.state.context
    return ctx


Ctx = Annotated[Context, Depends(context)]


async def current_staff(ctx: Ctx, token: str = Depends(bearer_token)) -> Actor:
    row = await repository.staff_for_token(ctx.pool, hash_token(token))
    if row is None:
        raise Refused(Kind.UNAUTHORIZED, "invalid_credentials", "Unknown staff credential.")
    return Actor(row["staff_id"], row["site_id"])


StaffActor = Depends(current_staff)


def same_site(actor: Actor, site_id: str) -> None:
    if actor.site_id != site_id:
        raise Refused(
            Kind.FORBIDDEN,
            "forbidden_site",
            f"staff of site '{actor.site_id}' cannot act for site '{site_id}'",
        )

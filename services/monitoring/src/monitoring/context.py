"""What the routes, pages and subscribers share (runtime, settings, live feed) and the
routes' typed dependencies: `Ctx`, `CurrentStaff`, `StaffAdmin`.

Staff authenticate with `Authorization: Bearer` or, on the dashboard, the session cookie
(HttpOnly, SameSite=Strict; docs/decisions/0040). A cookie-authenticated write must be
JSON: a cross-site form cannot send that without a CORS preflight we never answer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request
from trialstream.auth import hash_token, tokens_match
from trialstream.errors import Kind, Refused
from trialstream.runtime import Runtime

from monitoring import repository
from monitoring.domain import AckDeadlines, Role, Staff
from monitoring.live import LiveFeed
from monitoring.rbm.kri import KriConfig
from monitoring.settings import MonitoringSettings

# The dashboard keeps the staff token in this HttpOnly cookie (docs/decisions/0040).
SESSION_COOKIE = "trialstream_staff"


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
    ctx: Ctx, request: Request, authorization: Annotated[str | None, Header()] = None
) -> Staff:
    """Staff from `Authorization: Bearer` or, for the dashboard, the session cookie."""
    token = None
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(
                Kind.UNAUTHORIZED, "invalid_credentials", "Authorization must be 'Bearer <token>'."
            )
    else:
        token = request.cookies.get(SESSION_COOKIE)
        json_body = request.headers.get("content-type", "").startswith("application/json")
        if token and request.method not in ("GET", "HEAD") and not json_body:
            raise Refused(Kind.FORBIDDEN, "csrf", "Send JSON with the session cookie.")
    if not token:
        raise Refused(
            Kind.UNAUTHORIZED, "missing_credentials", "Send 'Authorization: Bearer <token>'."
        )
    staff = await repository.staff_for_token(ctx.pool, hash_token(token.strip()))
    if staff is None:
        raise Refused(Kind.UNAUTHORIZED, "invalid_credentials", "Unknown staff credential.")
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


async def staff_admin(
    ctx: Ctx, request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """The platform admin token, or a staff member with the admin role."""
    configured = ctx.settings.admin_token
    token = (authorization or "").partition(" ")[2].strip()
    if configured is not None and token and tokens_match(token, configured.get_secret_value()):
        return
    staff = await current_staff(ctx, request, authorization)
    if staff.role is not Role.ADMIN:
        raise Refused(Kind.FORBIDDEN, "admin_only", "Only an admin can create staff.")


StaffAdmin = Depends(staff_admin)

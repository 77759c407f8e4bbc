"""The site-staff dashboard: server-rendered pages (Jinja2) and their local static assets.

Login signs in at the identity issuer and stores the access token in an HttpOnly,
SameSite=Strict cookie (docs/decisions/0040); logout ends the session at the issuer:
page scripts never see it, and the JSON API accepts it next to `Authorization: Bearer`.
The pages fetch data from the same JSON API the curl users have, so roles and site
scoping are enforced in one place.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from trialstream.errors import Refused
from trialstream.events.base import ParticipantId
from trialstream.staff import SESSION_COOKIE, study_for

from monitoring import repository
from monitoring.context import Context, Ctx
from monitoring.domain import Staff, group_episodes, site_to_read, with_deadline

_PACKAGE = Path(str(files("monitoring")))
TEMPLATES = Jinja2Templates(directory=_PACKAGE / "templates")
STATIC_PATH = "/dashboard/static"

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    # the staff pages' shared stylesheet (staff.css) comes from the trialstream package
    return StaticFiles(directory=_PACKAGE / "static", packages=[("trialstream", "static")])


def _fmt_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.env.filters["utc"] = _fmt_time


async def _page_staff(ctx: Context, request: Request) -> Staff | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = ctx.runtime.staff.principal(token)
        return Staff(principal, study_for(principal, request.query_params.get("study")))
    except Refused:
        return None  # expired, logged out or revoked (or several studies, none named)


async def _issuer_endpoint(client: httpx.AsyncClient, ctx: Context, name: str) -> str:
    """An endpoint of the issuer, from its discovery document."""
    discovery = ctx.settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = await client.get(discovery)
    response.raise_for_status()
    return str(response.json()[name])


async def _sign_in(ctx: Context, name: str, password: str) -> tuple[str | None, str | None]:
    """(access token, None) from the issuer's password grant, or (None, why not)."""
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            url = await _issuer_endpoint(client, ctx, "token_endpoint")
            body = {"grant_type": "password", "username": name, "password": password}
            response = await client.post(url, json=body)
    except (httpx.HTTPError, KeyError, ValueError):
        return None, "The sign-in service cannot be reached; try again in a moment."
    if response.status_code == 200:
        return str(response.json()["access_token"]), None
    if response.status_code == 429:
        return None, "Too many failed sign-ins: try again later or ask an admin."
    return None, "Unknown name or wrong password."


def _to_login() -> RedirectResponse:
    return RedirectResponse("/dashboard/login", status_code=303)


def _forbidden(request: Request, staff: Staff, message: str) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request, "forbidden.html", {"staff": staff, "message": message}, status_code=403
    )


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/dashboard/login")
async def login_page(request: Request) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "login.html", {"error": None})


@router.post("/dashboard/login")
async def login(ctx: Ctx, request: Request) -> Response:
    """Sign in with name and password at the identity issuer (or paste an access token
    from any configured issuer); the access token goes in the session cookie for as long
    as it lives."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))

    def field(name: str) -> str:
        return (form.get(name) or [""])[0].strip()

    token, error = (field("token") or None), None
    if token is None:
        token, error = await _sign_in(ctx, field("username"), field("password"))
    staff = None
    if token is not None:
        try:
            staff = Staff(ctx.runtime.staff.principal(token))
        except Refused as exc:
            error = exc.message
    if staff is None or token is None:
        return TEMPLATES.TemplateResponse(request, "login.html", {"error": error}, status_code=401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.mode == "production",
        max_age=max(60, int(_expires_in(token))),
    )
    return response


def _expires_in(token: str) -> float:
    """Seconds the (already verified) token still lives: the cookie lives as long."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"]) - time.time()


@router.post("/dashboard/logout")
async def logout(ctx: Ctx, request: Request) -> RedirectResponse:
    """End the session at the issuer (every service then refuses its tokens), then drop
    the cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                url = await _issuer_endpoint(client, ctx, "end_session_endpoint")
                await client.post(url, headers={"Authorization": f"Bearer {token}"})
        except (httpx.HTTPError, KeyError, ValueError):
            log.warning("the issuer could not be told of a logout; the token lives until expiry")
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/dashboard", response_model=None)
async def feed_page(ctx: Ctx, request: Request, site: str | None = None) -> Response:
    return await _feed_response(ctx, request, site, "feed.html", _to_login())


@router.get("/dashboard/feed", response_model=None)
async def feed_fragment(ctx: Ctx, request: Request, site: str | None = None) -> Response:
    """The feed alone, for the page's refresh: 401 (not a redirect) without a session."""
    return await _feed_response(ctx, request, site, "_feed.html", Response(status_code=401))


async def _feed_response(
    ctx: Context, request: Request, site: str | None, template: str, signed_out: Response
) -> Response:
    staff = await _page_staff(ctx, request)
    if staff is None:
        return signed_out
    try:
        scope = site_to_read(staff, site)
    except Refused as exc:
        return _forbidden(request, staff, exc.message)
    context = {"staff": staff, "site": scope, **await _feed(ctx, staff.study_id, scope)}
    return TEMPLATES.TemplateResponse(request, template, context)


@router.get("/dashboard/participants/{participant_id}", response_model=None)
async def timeline_page(ctx: Ctx, request: Request, participant_id: ParticipantId) -> Response:
    staff = await _page_staff(ctx, request)
    if staff is None:
        return _to_login()
    where = await repository.where_is(ctx.pool, participant_id)
    if where is None:
        return _forbidden(request, staff, f"No participant {participant_id} is known here.")
    study, site = where
    try:
        site_to_read(staff.in_study(study), site)
    except Refused as exc:
        return _forbidden(request, staff, exc.message)
    context = {"staff": staff, "site": site, "participant_id": participant_id}
    return TEMPLATES.TemplateResponse(request, "timeline.html", context)


async def _feed(ctx: Context, study: str, site: str | None) -> dict[str, Any]:
    """Unresolved alerts (open and acknowledged) grouped per episode, plus recent resolved."""
    active = await repository.list_alerts(
        ctx.pool, site, ("open", "acknowledged"), 500, study=study
    )
    resolved = await repository.list_alerts(ctx.pool, site, ("resolved",), 20, study=study)
    now = datetime.now(UTC)
    episodes = group_episodes(with_deadline(active, ctx.deadlines, now))
    return {
        "episodes": episodes,
        "overdue": sum(1 for e in episodes for a in e.alerts if a.overdue),
        "resolved": with_deadline(resolved, ctx.deadlines, now),
        "rendered_at": now,
    }

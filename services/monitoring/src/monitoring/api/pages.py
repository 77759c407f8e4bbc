"""The site-staff dashboard: server-rendered pages (Jinja2) and their local static assets.

Login stores the staff token in an HttpOnly, SameSite=Strict cookie (docs/decisions/0040):
page scripts never see it, and the JSON API accepts it next to `Authorization: Bearer`.
The pages fetch data from the same JSON API the curl users have, so roles and site
scoping are enforced in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from trialstream.auth import hash_token
from trialstream.errors import Refused
from trialstream.events.base import ParticipantId

from monitoring import repository
from monitoring.context import SESSION_COOKIE, Context, Ctx
from monitoring.domain import Staff, group_episodes, site_to_read, with_deadline

_PACKAGE = Path(str(files("monitoring")))
TEMPLATES = Jinja2Templates(directory=_PACKAGE / "templates")
STATIC_PATH = "/dashboard/static"

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=_PACKAGE / "static")


def _fmt_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.env.filters["utc"] = _fmt_time


async def _page_staff(ctx: Context, request: Request) -> Staff | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await repository.staff_for_token(ctx.pool, hash_token(token))


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
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    staff = await repository.staff_for_token(ctx.pool, hash_token(token)) if token else None
    if staff is None:
        return TEMPLATES.TemplateResponse(
            request, "login.html", {"error": "That staff token is not valid."}, status_code=401
        )
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.mode == "production",
        max_age=12 * 3600,
    )
    return response


@router.post("/dashboard/logout")
async def logout() -> RedirectResponse:
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
    context = {"staff": staff, "site": scope, **await _feed(ctx, scope)}
    return TEMPLATES.TemplateResponse(request, template, context)


@router.get("/dashboard/participants/{participant_id}", response_model=None)
async def timeline_page(ctx: Ctx, request: Request, participant_id: ParticipantId) -> Response:
    staff = await _page_staff(ctx, request)
    if staff is None:
        return _to_login()
    site = await repository.site_of(ctx.pool, participant_id)
    if site is None:
        return _forbidden(request, staff, f"No participant {participant_id} is known here.")
    try:
        site_to_read(staff, site)
    except Refused as exc:
        return _forbidden(request, staff, exc.message)
    context = {"staff": staff, "site": site, "participant_id": participant_id}
    return TEMPLATES.TemplateResponse(request, "timeline.html", context)


async def _feed(ctx: Context, site: str | None) -> dict[str, Any]:
    """Unresolved alerts (open and acknowledged) grouped per episode, plus recent resolved."""
    active = await repository.list_alerts(ctx.pool, site, ("open", "acknowledged"), 500)
    resolved = await repository.list_alerts(ctx.pool, site, ("resolved",), 20)
    now = datetime.now(UTC)
    episodes = group_episodes(with_deadline(active, ctx.deadlines, now))
    return {
        "episodes": episodes,
        "overdue": sum(1 for e in episodes for a in e.alerts if a.overdue),
        "resolved": with_deadline(resolved, ctx.deadlines, now),
        "rendered_at": now,
    }

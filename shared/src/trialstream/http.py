"""HTTP conventions every service shares: one error body shape (for `errors.Refused`), request metrics, health and
metrics routes.

Error body: {"error": {"code": "machine_readable", "message": "A sentence.", "details": [...]}}
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trialstream.errors import Kind, Refused

REQUESTS = Counter(
    "trialstream_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "trialstream_http_request_seconds",
    "Time from request to the end of the response body",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class ApiError(Refused):
    """Deprecated spelling of `Refused` by status number; being replaced service by service."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(Kind(status), code, message, details)


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as [{"field": "readings.3.value", "code": ..., "message": ...}]."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        out.append(
            {
                "field": ".".join(loc),
                "code": err.get("type", "invalid"),
                "message": err.get("msg", ""),
            }
        )
    return out


class RequestMetrics:
    """Counts and times every request by its route template (`/v1/alerts/{alert_id}`, not
    the URL: bounded label values). Plain ASGI, so streamed responses pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], template).observe(time.perf_counter() - started)


def install_error_handlers(app: FastAPI) -> None:
    """The shared error body for our errors and for request validation, and request metrics."""
    app.add_middleware(RequestMetrics)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        headers = dict(exc.headers)
        if exc.kind is Kind.UNAUTHORIZED:
            headers.setdefault("WWW-Authenticate", "Bearer")
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status,
            headers=headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                error_body(
                    "malformed_json", "The request body is not valid JSON.", field_errors(errors)
                ),
                status_code=422,
            )
        return JSONResponse(
            error_body(
                "invalid_request", "The request does not match the schema.", field_errors(errors)
            ),
            status_code=422,
        )


ReadyCheck = Callable[[], Awaitable[None]]


def ops_router(ready_checks: list[ReadyCheck]) -> APIRouter:
    """/healthz (the process is up), /readyz (its broker and database answer), /metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        failures = []
        for check in ready_checks:
            try:
                await check()
            except Exception as exc:
                failures.append(f"{check.__name__}: {exc!r}")
        if failures:
            return JSONResponse({"status": "unavailable", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @router.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return router

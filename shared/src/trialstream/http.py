"""HTTP conventions every service shares: one error body shape (for `errors.Refused`), request metrics, health and
metrics routes.

Error body: {"error": {"code": "machine_readable", "message": "A sentence.", "details": [...]}}
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trialstream.errors import Kind, Refused, error_body
from trialstream.ratelimit import CredentialRateLimit, RateLimit
from trialstream.transient import is_transient

log = structlog.get_logger(__name__)

REQUESTS = Counter(
    "trialstream_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "trialstream_http_request_seconds",
    "Time from request to the end of the response body",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


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


class BodyLimit:
    """Refuses a request body over `max_bytes` with 413 while it is read, before any
    route, dependency or credential check runs: a declared Content-Length over the limit
    is refused unread, a streamed body the moment it passes the limit. Nothing beyond the
    limit is ever buffered."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def noting(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, noting)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _too_large(self.max_bytes)
        await body(
            {"type": "http", "method": "POST", "path": "/", "headers": []},
            _no_body,
            send,
        )


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` mid-body. An HTTPException, because FastAPI turns any other
    error while it reads a body into a 400; rendered as our 413 by the handler below."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413)
        self.max_bytes = max_bytes


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse(
        error_body(
            "request_too_large",
            f"The body is larger than {max_bytes} bytes.",
            [{"field": "body", "code": "too_large", "message": f"at most {max_bytes}"}],
        ),
        status_code=413,
        headers={"Connection": "close"},
    )


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


# Failures of a dependency, not of the request: 503 with Retry-After, never a 500.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    KafkaError,
)
RETRY_AFTER_SECONDS = 2
DEFAULT_MAX_BODY_BYTES = 1_048_576


def install_error_handlers(
    app: FastAPI,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rate_limit: RateLimit | None = None,
) -> None:
    """The shared error body for refusals and for request validation; 503 with
    Retry-After when the database or broker fails under a request; the body limit and the
    per-credential rate limit (both before authentication; `ServiceSettings.rate_limit()`);
    request metrics."""
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if rate_limit is not None:
        app.add_middleware(CredentialRateLimit, limit=rate_limit)
    app.add_middleware(RequestMetrics)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        # asyncpg's InternalClientError is what a connection cut mid-statement leaves
        # behind ("another operation is in progress"): the request may be retried.
        if not (is_transient(exc) or isinstance(exc, asyncpg.InternalClientError)):
            raise exc
        log.warning("dependency unavailable under a request", error=type(exc).__name__)
        return JSONResponse(
            error_body("unavailable", "A database or broker did not answer; retry later."),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def _body_too_large(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, _BodyTooLarge)
        return _too_large(exc.max_bytes)

    app.add_exception_handler(_BodyTooLarge, _body_too_large)
    for kind in (*_UNAVAILABLE, asyncpg.InternalClientError):
        app.add_exception_handler(kind, _unavailable)

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


class NotReady(Exception):
    """A readiness failure whose message is safe to show on /readyz (names, no internals)."""


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
                # Named, not echoed: an error's text can carry hosts, DSNs or SQL.
                log.warning("not ready", check=check.__name__, error=repr(exc))
                shown = str(exc) if isinstance(exc, NotReady) else type(exc).__name__
                failures.append(f"{check.__name__}: {shown}")
        if failures:
            return JSONResponse({"status": "unavailable", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @router.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return router

"""HTTP conventions every service shares: one error body shape, health and metrics routes.

Error body: {"error": {"code": "machine_readable", "message": "A sentence.", "details": [...]}}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=headers
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

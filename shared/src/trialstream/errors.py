"""Why a request was refused, as data: the one error type every service raises, mapped
to HTTP in one place (`trialstream.http.install_error_handlers`).

Use cases raise `Refused(Kind.CONFLICT, "already_enrolled", "...")`; routes let it
through. The body is always {"error": {"code", "message", "details"}} with the status
the kind names.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Kind(IntEnum):
    """What went wrong, by the HTTP status it answers with."""

    UNAUTHORIZED = 401  # no credential, or one we do not accept
    FORBIDDEN = 403  # a known caller, not allowed to do this
    NOT_FOUND = 404  # nothing by that id that this caller may see
    CONFLICT = 409  # the request is fine; the state of things refuses it
    GONE = 410  # it existed and has been withdrawn or expired
    TOO_LARGE = 413
    INVALID = 422  # a field's value, named in `details`
    TOO_MANY = 429
    UNAVAILABLE = 503  # try again later (a dependency is down)


class Refused(Exception):
    def __init__(
        self,
        kind: Kind,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return int(self.kind)

    def __repr__(self) -> str:
        return f"Refused({self.kind.name}, {self.code!r}, {self.message!r})"


def about_field(
    kind: Kind, code: str, message: str, field: str, detail: str, **extra: str
) -> Refused:
    """A refusal that points at one request field, in the error body's detail shape."""
    return Refused(
        kind, code, message, [{"field": field, "code": code, "message": detail, **extra}]
    )


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The one error body of every service: {"error": {"code", "message", "details"}}."""
    return {"error": {"code": code, "message": message, "details": details or []}}

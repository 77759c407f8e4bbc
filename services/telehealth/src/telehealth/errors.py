"""Why a use case refused, as data the HTTP layer maps to our error body."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Kind(IntEnum):
    INVALID = 422
    FORBIDDEN = 403
    NOT_FOUND = 404
    CONFLICT = 409


class Refused(Exception):
    def __init__(
        self, kind: Kind, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details or []


def about_field(
    kind: Kind, code: str, message: str, field: str, detail: str, **extra: str
) -> Refused:
    """A refusal that points at one request field, in the shared error body's detail shape."""
    return Refused(
        kind, code, message, [{"field": field, "code": code, "message": detail, **extra}]
    )

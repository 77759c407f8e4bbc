"""Bearer credentials: random tokens shown once, stored only as a SHA-256 digest.

Tokens carry 256 bits of randomness, so a fast hash is enough (no password
stretching needed) and lets us look a token up by its digest in one indexed query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Header

from trialstream.errors import Kind, Refused


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(authorization: str | None = Header(default=None)) -> str:
    """FastAPI dependency: the token from `Authorization: Bearer ...`, or a 401."""
    if not authorization:
        raise Refused(
            Kind.UNAUTHORIZED, "missing_credentials", "Send 'Authorization: Bearer <token>'."
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(
            Kind.UNAUTHORIZED, "invalid_credentials", "Authorization must be 'Bearer <token>'."
        )
    return token.strip()

"""Per-credential rate limits: one device, app or staff token cannot take a service's
capacity from everyone else.

An ASGI middleware keyed by the credential a request presents (the bearer token, else the
dashboard's session cookie), before authentication and before the body is read: a flood
with one stolen or broken token is refused without a database lookup. Each key has a token
bucket (`per_second` refill, `burst` capacity); a request over it gets 429 with
`Retry-After` (whole seconds until one request fits again). Requests without a credential
are not counted here: they are refused as 401 without touching the database. The platform
admin token is not limited either: it is the operator's, and bulk enrolment runs on it.

The buckets live in the process: with N replicas behind a load balancer a credential gets
up to N times the rate. That bounds the harm a credential can do per process, which is
what protects the other callers of that process (decision 0069). Keys are a digest of the
token, never the token; the table is bounded (`max_keys`), dropping idle buckets first.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from trialstream.errors import Kind, Refused, error_body

SESSION_COOKIES = (b"trialstream_staff",)


@dataclass(frozen=True)
class RateLimit:
    """At most `per_second` requests per credential, in bursts of up to `burst`; requests
    with a token of `unlimited` (the platform admin token) are not counted."""

    per_second: float
    burst: int
    unlimited: tuple[str, ...] = ()


def digest(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()[:32]


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Token buckets per key. `take(key)` returns 0 when the request may go, else the
    seconds until it could."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")
        self.per_second = per_second
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            refill = (now - bucket.at) * self.per_second
            bucket.tokens = min(float(self.burst), bucket.tokens + refill)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.per_second

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled (their owners are idle); if none has, the
        oldest half: a newcomer is never refused because the table is full."""
        full = self.burst / self.per_second
        idle = [k for k, b in self._buckets.items() if now - b.at >= full]
        if not idle:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k].at)
            idle = by_age[: max(1, len(by_age) // 2)]
        for key in idle:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def credential_key(scope: Scope) -> str | None:
    """A digest of the request's bearer token or session cookie; None without one."""
    headers = dict(scope.get("headers") or ())
    auth = headers.get(b"authorization", b"")
    scheme, _, token = auth.partition(b" ")
    raw = token.strip() if scheme.lower() == b"bearer" else b""
    if not raw:
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name in SESSION_COOKIES and value:
                raw = value
                break
    return digest(raw) if raw else None


def too_many(wait_seconds: float) -> Refused:
    retry = max(1, math.ceil(wait_seconds))
    return Refused(
        Kind.TOO_MANY,
        "rate_limited",
        f"Too many requests with this credential; retry in {retry} s.",
        headers={"Retry-After": str(retry)},
    )


class CredentialRateLimit:
    """ASGI middleware enforcing a RateLimit per credential.
    Health, readiness and metrics paths are never limited (probes must always answer)."""

    EXEMPT = ("/healthz", "/readyz", "/metrics")

    def __init__(self, app: ASGIApp, limit: RateLimit) -> None:
        self.app = app
        self.buckets = TokenBuckets(limit.per_second, limit.burst)
        self.unlimited = frozenset(digest(t.encode()) for t in limit.unlimited)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        key = credential_key(scope)
        wait = 0.0 if key is None or key in self.unlimited else self.buckets.take(key)
        if wait > 0:
            refused = too_many(wait)
            response = JSONResponse(
                error_body(refused.code, refused.message, refused.details),
                status_code=refused.status,
                headers=refused.headers,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

"""One credential cannot take a process's capacity: token buckets per credential, 429 with
Retry-After, before authentication; other credentials and probes are unaffected."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI
from trialstream.auth import bearer_token
from trialstream.http import install_error_handlers
from trialstream.ratelimit import RateLimit, TokenBuckets, credential_key
from trialstream.settings import ServiceSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_applies_and_refills() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_second=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token refills in 1/2 s
    assert buckets.take("b") == 0  # another credential has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
    clock.now += 10  # idle: back to a full burst, never more
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_the_table_stays_bounded_and_never_refuses_a_newcomer() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_second=1, burst=1, max_keys=4, clock=clock)
    for k in range(4):
        assert buckets.take(f"busy-{k}") == 0
    for k in range(20):  # nobody idle: the oldest half goes, the newcomer is let in
        assert buckets.take(f"new-{k}") == 0
        clock.now += 0.01
    assert len(buckets) <= 4


def test_a_rate_of_zero_turns_the_limit_off_and_a_bad_rate_is_refused() -> None:
    assert ServiceSettings(rate_limit_per_second=0).rate_limit() is None
    assert ServiceSettings().rate_limit() == RateLimit(50.0, 200, ())
    with_admin = ServiceSettings(admin_token="adm").rate_limit()
    assert with_admin == RateLimit(50.0, 200, ("adm",))
    with pytest.raises(ValueError, match="per_second"):
        TokenBuckets(per_second=-1, burst=1)


def test_the_key_is_a_digest_of_the_bearer_token_or_session_cookie_never_the_token() -> None:
    bearer = credential_key({"headers": [(b"authorization", b"Bearer dev_secret")]})
    cookie = credential_key({"headers": [(b"cookie", b"x=1; trialstream_staff=dev_secret")]})
    assert bearer == cookie
    assert bearer is not None
    assert "secret" not in bearer
    assert credential_key({"headers": []}) is None
    assert credential_key({"headers": [(b"authorization", b"Basic abc")]}) is None


def app() -> FastAPI:
    api = FastAPI()
    install_error_handlers(api, rate_limit=RateLimit(1.0, 3, ("operator-token",)))

    @api.get("/things")
    async def things(token: str = Depends(bearer_token)) -> dict[str, str]:
        return {"ok": token[:3]}

    @api.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return api


async def test_over_the_burst_a_credential_gets_429_with_retry_after_and_others_do_not() -> None:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        flood = {"Authorization": "Bearer flood-token"}
        codes = [(await c.get("/things", headers=flood)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = await c.get("/things", headers=flood)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "rate_limited"
        other = await c.get("/things", headers={"Authorization": "Bearer other-token"})
        assert other.status_code == 200
        assert (await c.get("/things")).status_code == 401  # no credential: not counted
        for _ in range(5):
            assert (await c.get("/healthz", headers=flood)).status_code == 200
        operator = {"Authorization": "Bearer operator-token"}  # the admin token: bulk work
        assert {(await c.get("/things", headers=operator)).status_code for _ in range(10)} == {200}

"""One refusal type, mapped to the shared error body and status in one place."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from trialstream.errors import Kind, Refused, about_field
from trialstream.http import install_error_handlers


def app_refusing(exc: Refused) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/thing")
    async def thing() -> None:
        raise exc

    return app


async def answer(exc: Refused) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_refusing(exc))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/thing")


async def test_each_kind_answers_with_its_status_and_the_shared_body() -> None:
    for kind in Kind:
        r = await answer(Refused(kind, f"code_{kind.value}", "Why, in a sentence."))
        assert r.status_code == kind.value
        assert r.json() == {
            "error": {"code": f"code_{kind.value}", "message": "Why, in a sentence.", "details": []}
        }


async def test_unauthorized_asks_for_a_bearer_token_and_other_headers_pass() -> None:
    r = await answer(Refused(Kind.UNAUTHORIZED, "missing_credentials", "Send a token."))
    assert r.headers["www-authenticate"] == "Bearer"
    r = await answer(Refused(Kind.TOO_MANY, "slow_down", "Too many.", headers={"Retry-After": "3"}))
    assert (r.status_code, r.headers["retry-after"]) == (429, "3")
    assert "www-authenticate" not in r.headers


async def test_a_field_refusal_names_the_field() -> None:
    r = await answer(
        about_field(Kind.INVALID, "unknown_timezone", "Bad zone.", "timezone", "not IANA")
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [
        {"field": "timezone", "code": "unknown_timezone", "message": "not IANA"}
    ]

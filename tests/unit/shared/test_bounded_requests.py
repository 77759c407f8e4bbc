"""Every service refuses an oversized body before authentication, answers 503 (not 500)
when its database or broker fails under a request, and /readyz names, not echoes, errors."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import Depends, FastAPI
from pydantic import BaseModel
from starlette.types import Message
from trialstream.auth import bearer_token
from trialstream.http import install_error_handlers, ops_router

LIMIT = 1000


class Note(BaseModel):
    text: str


def app(fail_with: BaseException | None = None) -> FastAPI:
    api = FastAPI()
    install_error_handlers(api, max_body_bytes=LIMIT)
    reached: list[str] = []
    api.state.reached = reached

    @api.post("/notes")
    async def post(note: Note, _: str = Depends(bearer_token)) -> dict[str, str]:
        reached.append(note.text)
        if fail_with is not None:
            raise fail_with
        return {"ok": note.text}

    return api


def client(api: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_a_declared_oversized_body_is_refused_before_the_credential_is_checked() -> None:
    api = app()
    async with client(api) as c:
        r = await c.post("/notes", json={"text": "x" * 2 * LIMIT})  # and no credential
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"
    assert api.state.reached == []


async def test_a_streamed_body_is_cut_off_at_the_limit_unread_beyond_it() -> None:
    api, pulled, sent = app(), [0], []

    async def receive() -> Message:
        pulled[0] += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": pulled[0] < 10_000}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/notes",
        "raw_path": b"/notes",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],  # no content-length
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
        "state": {},
    }
    await api(scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled[0] <= LIMIT // 100 + 1, "read past the limit"
    assert api.state.reached == []


async def test_a_body_within_the_limit_reaches_the_route() -> None:
    async with client(app()) as c:
        r = await c.post("/notes", json={"text": "hi"}, headers={"Authorization": "Bearer t"})
    assert r.json() == {"ok": "hi"}


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.InternalClientError("another operation is in progress"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        KafkaConnectionError("broker away"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
    ],
    ids=type,
)
async def test_a_database_or_broker_failure_is_a_503_with_retry_advice(
    failure: BaseException,
) -> None:
    async with client(app(failure)) as c:
        r = await c.post("/notes", json={"text": "a"}, headers={"Authorization": "Bearer t"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "unavailable"


async def test_a_bug_stays_a_500() -> None:
    async with client(app(FileNotFoundError("/etc/zoneinfo/Europe"))) as c:
        r = await c.post("/notes", json={"text": "a"}, headers={"Authorization": "Bearer t"})
    assert r.status_code == 500
    assert "zoneinfo" not in r.text


async def test_readyz_names_the_failed_check_without_echoing_its_error() -> None:
    async def check_database() -> None:
        raise OSError("could not connect to postgresql://svc:secret@db:5432/trialstream")

    api = FastAPI()
    api.include_router(ops_router([check_database]))
    async with client(api) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failures"] == ["check_database: OSError"]

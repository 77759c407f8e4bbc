"""Every service counts and times its HTTP requests by route template."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from trialstream.errors import Kind, Refused
from trialstream.http import install_error_handlers


def app_with_a_route() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 0:
            raise Refused(Kind.NOT_FOUND, "unknown_thing", "no thing 0")
        return {"thing_id": thing_id}

    return app


def count(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "trialstream_http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


async def test_requests_are_counted_by_route_template_and_status() -> None:
    before_ok, before_missing = (
        count("/v1/things/{thing_id}", "200"),
        count("/v1/things/{thing_id}", "404"),
    )
    before_unmatched = count("(unmatched)", "404")
    transport = httpx.ASGITransport(app=app_with_a_route())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/v1/things/7")).status_code == 200
        assert (await client.get("/v1/things/8")).status_code == 200
        assert (await client.get("/v1/things/0")).status_code == 404
        assert (await client.get("/nowhere")).status_code == 404
    assert count("/v1/things/{thing_id}", "200") - before_ok == 2
    assert count("/v1/things/{thing_id}", "404") - before_missing == 1
    assert count("(unmatched)", "404") - before_unmatched == 1
    timed = REGISTRY.get_sample_value(
        "trialstream_http_request_seconds_count",
        {"method": "GET", "route": "/v1/things/{thing_id}"},
    )
    assert timed is not None
    assert timed >= 3

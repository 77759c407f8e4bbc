"""Retention against the real broker and PostgreSQL: the app's own routers, consumers,
dispatcher and relay, and a real local HTTP server standing in for a delivery gateway."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from helpers import serving
from retention.main import create_app
from retention_support import Gateway, Retention, settings_for


@pytest.fixture
async def retention(kafka: str, database_url: str) -> AsyncIterator[Retention]:
    async with serving(create_app(settings_for(kafka, database_url))) as client:
        yield Retention(client, kafka, database_url)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(statuses=[])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                gw.requests.append(
                    {"body": body, "idempotency_key": self.headers["Idempotency-Key"]}
                )
                mine = gw.scripted.get(body.get("participant_id", ""))
                queue = mine if mine is not None else gw.statuses
                status = queue.pop(0) if queue else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gw.url = f"http://127.0.0.1:{server.server_address[1]}/nudges"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()

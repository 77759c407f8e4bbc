"""Run one service process: logging set up, then uvicorn with graceful shutdown."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from trialstream.logs import configure_logging
from trialstream.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings, *, service: str) -> None:
    configure_logging(settings.log_level, json=settings.log_json, service=service)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=20,
    )

"""Structured logs (JSON lines by default). Log event ids and pseudonymous ids, never payloads."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", *, json: bool = True, service: str = "") -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    # aiokafka is chatty at INFO about group joins; keep its warnings.
    logging.getLogger("aiokafka").setLevel(
        max(logging.WARNING, logging.getLevelName(level.upper()))
    )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)

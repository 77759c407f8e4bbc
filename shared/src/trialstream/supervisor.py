"""`trialstream up`: infrastructure, migrations, one OS process per service replica.

Children run in their own sessions, so Ctrl-C reaches only the supervisor, which
then stops them in order: simulator, services (each finishes its in-flight batch
and commits), then the embedded broker and database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from trialstream.db import migrate
from trialstream.embedded import EmbeddedKafka, EmbeddedPostgres
from trialstream.kafka import ensure_topics
from trialstream.services import ServiceInfo


class SupervisorError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_url: str | None = None

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Infrastructure:
    kafka_bootstrap_servers: str
    database_url: str
    embedded_kafka: EmbeddedKafka | None = None
    embedded_postgres: EmbeddedPostgres | None = None

    @classmethod
    def resolve(cls, env: Mapping[str, str], state_dir: Path) -> Infrastructure:
        kafka = env.get("KAFKA_BOOTSTRAP_SERVERS")
        database = env.get("DATABASE_URL")
        embedded_kafka = embedded_pg = None
        try:
            if not kafka:
                embedded_kafka = EmbeddedKafka(log_path=state_dir / "tansu.log").start()
                kafka = embedded_kafka.bootstrap_servers
            if not database:
                embedded_pg = EmbeddedPostgres().start()
                database = embedded_pg.url
        except BaseException:
            for part in (embedded_kafka, embedded_pg):
                if part is not None:
                    part.stop()
            raise
        return cls(kafka, database, embedded_kafka, embedded_pg)

    @property
    def embedded(self) -> bool:
        return self.embedded_kafka is not None

    def stop(self) -> None:
        if self.embedded_kafka is not None:
            self.embedded_kafka.stop()
        if self.embedded_postgres is not None:
            self.embedded_postgres.stop()


async def prepare(infra: Infrastructure, services: list[ServiceInfo], partitions: int) -> None:
    await ensure_topics(infra.kafka_bootstrap_servers, partitions=partitions)
    for info in services:
        await migrate(infra.database_url, schema=info.schema, directories=[info.migrations])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Supervisor:
    env: dict[str, str]
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def spawn(
        self, name: str, argv: list[str], extra_env: Mapping[str, str], ready_url: str | None
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                argv,
                env={**self.env, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log_path, ready_url)
        self.children.append(child)
        return child

    def spawn_service(self, info: ServiceInfo, replica: int) -> Child:
        port = info.port_of(replica)
        if not port_free(port):
            raise SupervisorError(
                f"port {port} for {info.name} replica {replica} is in use; stop what holds it "
                f"(another `trialstream up`?) and try again"
            )
        return self.spawn(
            f"{info.name}-{replica}",
            [sys.executable, "-m", info.module],
            {f"{info.env_prefix}PORT": str(port), "TRIALSTREAM_REPLICA": str(replica)},
            f"http://127.0.0.1:{port}/readyz",
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = [c for c in self.children if c.ready_url]
        with httpx.Client(timeout=2) as client:
            while pending:
                self.check_alive()
                if time.monotonic() > deadline:
                    names = ", ".join(c.name for c in pending)
                    raise SupervisorError(
                        f"not ready after {timeout:.0f} s: {names} (logs in {self.log_dir})"
                    )
                still = []
                for child in pending:
                    try:
                        ok = client.get(child.ready_url or "").status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if not ok:
                        still.append(child)
                pending = still
                if pending:
                    time.sleep(0.3)

    def check_alive(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise SupervisorError(
                    f"{child.name} exited with code {code}; last lines of {child.log_path}:\n{child.tail()}"
                )

    def stop_all(self, timeout: float = 30.0) -> None:
        # Reverse start order: the simulator first, then the consumers of its data.
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait(5)


def child_env(infra: Infrastructure, admin_token: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
            "DATABASE_URL": infra.database_url,
            "TRIALSTREAM_ADMIN_TOKEN": admin_token,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if infra.embedded:
        # The embedded broker holds a group join for half the session timeout.
        env.setdefault("TRIALSTREAM_KAFKA_SESSION_TIMEOUT_MS", "2000")
    return env


def run_prepare(infra: Infrastructure, services: list[ServiceInfo], partitions: int) -> None:
    asyncio.run(prepare(infra, services, partitions))

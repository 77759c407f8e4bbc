"""`trialstream up`: infrastructure, migrations, one OS process per service replica.

Children run in their own sessions, so Ctrl-C reaches only the supervisor, which
then stops them in order: simulator, services (each finishes its in-flight batch
and commits), then the embedded broker and database. A child that dies once the
platform is up is restarted, like a container under `restart: unless-stopped`, while
its replicas in the same consumer group take over its partitions; one that keeps
dying stops everything with its log. `processes.json` in the run folder names the
pid of every child, for operators (and the scale-out test) to find a replica.
"""

from __future__ import annotations

import asyncio
import json
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

from trialstream.db import migrate, service_role, with_user
from trialstream.embedded import EmbeddedKafka, EmbeddedPostgres
from trialstream.kafka import ensure_topics
from trialstream.lifetime import tied_to_parent
from trialstream.services import ServiceInfo


class SupervisorError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_url: str | None = None
    argv: list[str] = field(default_factory=list)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    restarts: list[float] = field(default_factory=list)  # monotonic times
    given_up: bool = False  # exited and, with restarts off, left down

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
    restart: bool = True
    # True when PostgreSQL is embedded (trust auth): each service then signs in as its own
    # role and never holds the owner's credentials; `up` ran the migrations as the owner.
    own_database_logins: bool = False

    def spawn(
        self, name: str, argv: list[str], extra_env: Mapping[str, str], ready_url: str | None
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        child = Child(name, self._start(argv, extra_env, log_path, "wb"), log_path, ready_url)
        child.argv, child.extra_env = argv, extra_env
        self.children.append(child)
        self.write_manifest()
        return child

    def _start(
        self, argv: list[str], extra_env: Mapping[str, str], log_path: Path, mode: str
    ) -> subprocess.Popen[bytes]:
        with log_path.open(mode) as log:
            return subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                argv,
                env={**self.env, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=tied_to_parent(),  # kill -9 of `up` must not orphan services
            )

    def write_manifest(self) -> None:
        manifest = [
            {
                "name": c.name,
                "pid": c.process.pid,
                "ready_url": c.ready_url,
                "restarts": len(c.restarts),
                "log": str(c.log_path),
            }
            for c in self.children
        ]
        (self.log_dir / "processes.json").write_text(json.dumps(manifest, indent=2))

    def restart_exited(self, max_restarts: int = 5, window_s: float = 60.0) -> list[str]:
        """Restart children that died (unless restarts are off: then each is reported once
        and left down); return one line per child. A child that died `max_restarts` times
        within `window_s` is a crash loop: SupervisorError."""
        said = []
        now = time.monotonic()
        for child in self.children:
            code = child.process.poll()
            if code is None or child.given_up:
                continue
            if not self.restart:
                child.given_up = True
                said.append(f"{child.name} exited with code {code}; not restarted (--no-restart)")
                continue
            child.restarts = [t for t in child.restarts if now - t < window_s]
            if len(child.restarts) >= max_restarts:
                raise SupervisorError(
                    f"{child.name} exited {max_restarts + 1} times within {window_s:.0f} s "
                    f"(last code {code}); last lines of {child.log_path}:\n{child.tail()}"
                )
            child.restarts.append(now)
            child.process = self._start(child.argv, child.extra_env, child.log_path, "ab")
            said.append(
                f"{child.name} exited with code {code}; restarted as pid {child.process.pid} "
                f"({len(child.restarts)} in the last {window_s:.0f} s)"
            )
        if said:
            self.write_manifest()
        return said

    def spawn_service(self, info: ServiceInfo, replica: int) -> Child:
        port = info.port_of(replica)
        if not port_free(port):
            raise SupervisorError(
                f"port {port} for {info.name} replica {replica} is in use; stop what holds it "
                f"(another `trialstream up`?) and try again"
            )
        env = {f"{info.env_prefix}PORT": str(port), "TRIALSTREAM_REPLICA": str(replica)}
        if self.own_database_logins:
            env["DATABASE_URL"] = with_user(self.env["DATABASE_URL"], service_role(info.schema))
        return self.spawn(
            f"{info.name}-{replica}",
            [sys.executable, "-m", info.module],
            env,
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

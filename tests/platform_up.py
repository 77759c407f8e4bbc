"""`trialstream up` as a user runs it, for end-to-end tests: the real command with its
embedded broker and database, every service its own process, on the fixed ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from helpers import exclusive
from trialstream.lifetime import tied_to_parent

T = TypeVar("T")
INGEST, MONITORING = "http://127.0.0.1:8001", "http://127.0.0.1:8002"
IDENTITY = "http://127.0.0.1:8007"


@dataclass
class Platform:
    process: subprocess.Popen[str]
    run_dir: Path
    output: list[str]

    def banner(self, label: str) -> str:
        """A value from the banner, e.g. `Kafka` or `PostgreSQL`."""
        for line in self.output:
            if line.strip().startswith(label):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"no {label!r} line in the banner:\n{''.join(self.output)}")

    def pid_of(self, child: str) -> int:
        """The current pid of a child such as `ingest-0` (the supervisor's manifest)."""
        manifest = json.loads((self.run_dir / "processes.json").read_text())
        return int(next(p["pid"] for p in manifest if p["name"] == child))

    def more_output(self) -> list[str]:
        """What `up` printed so far, the banner included."""
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        extra = self.process.stdout.read() or ""
        return [*self.output, *extra.splitlines()]


def up_platform(
    workdir: Path, args: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[Platform]:
    """Run `trialstream up ARGS` in `workdir` until the generator is closed (then Ctrl-C).
    One platform at a time on this machine: the ports are fixed."""
    with exclusive("trialstream-up-ports"):
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
        }
        trialstream = Path(sys.executable).with_name("trialstream")
        process = subprocess.Popen(
            [str(trialstream), "up", *args],
            cwd=workdir,
            env=base | (env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=tied_to_parent(),  # a killed test run takes the platform with it
        )
        try:
            output = _read_until_banner(process)
            platform = Platform(process, workdir, output)
            platform.run_dir = workdir / platform.banner("logs").rstrip("/")
            yield platform
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()


def _read_until_banner(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    deadline, seen = time.monotonic() + 180, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError("trialstream up exited early:\n" + "".join(seen))
        seen.append(line)
        if "Ctrl-C stops everything" in line:
            return seen
    raise AssertionError("trialstream up did not come up:\n" + "".join(seen))


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float = 90,
    last: Callable[[], Any] | None = None,
) -> T:
    """Poll `check` until truthy; on timeout, `last()` (if given) tells what was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    seen = f"; last seen: {last()!r}" if last is not None else ""
    raise AssertionError(f"{what}: not within {timeout} s{seen}")


def enrol_fleet(
    client: httpx.Client, admin_token: str, prefix: str, site: str, count: int
) -> list[tuple[str, str, str]]:
    """Enrol `count` participants at `site`, each with a watch: (participant, device, token),
    as a platform admin signed in at the issuer (the admin token only bootstraps it)."""
    enroller = signed_in(client, admin_token, f"enroller-{prefix}", None, "platform_admin")
    admin = {"Authorization": f"Bearer {enroller}"}
    fleet = []
    for n in range(count):
        pid, device = f"P-{prefix}-{n:02d}", f"watch-{prefix}-{n:02d}"
        client.post(
            f"{INGEST}/v1/admin/participants",
            headers=admin,
            json={"participant_id": pid, "site_id": site},
        ).raise_for_status()
        r = client.post(
            f"{INGEST}/v1/admin/devices",
            headers=admin,
            json={"device_id": device, "participant_id": pid},
        )
        r.raise_for_status()
        fleet.append((pid, device, str(r.json()["token"])))
    return fleet


def signed_in(
    client: httpx.Client,
    admin_token: str,
    subject: str,
    site: str | None,
    role: str = "investigator",
    study: str = "default",
) -> str:
    """A staff member with `role` at `site` of `study` (a platform admin: everywhere),
    created at the identity issuer with the bootstrap admin token and signed in with their
    password: their access token."""
    password = uuid.uuid4().hex
    grant: dict[str, str] = {"role": role}
    if role != "platform_admin":
        grant["study"] = study
        if site is not None:
            grant["site"] = site
    client.post(
        f"{IDENTITY}/v1/people",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={"subject": subject, "name": subject, "password": password, "grants": [grant]},
    ).raise_for_status()
    r = client.post(
        f"{IDENTITY}/v1/token",
        json={"grant_type": "password", "username": subject, "password": password},
    )
    r.raise_for_status()
    return str(r.json()["access_token"])

"""The embedded broker and PostgreSQL: they start even when their port is taken meanwhile,
and a killed test run (or `trialstream up`) leaves neither behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trialstream.embedded import EmbeddedKafka, EmbeddedPostgres

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG"),
]

OWNER = """
import time
from trialstream.embedded import EmbeddedKafka, EmbeddedPostgres
kafka, postgres = EmbeddedKafka().start(), EmbeddedPostgres(durable=False).start()
print(kafka.process.pid, postgres.process.pid, flush=True)
time.sleep(300)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_embedded_broker_and_database_stop_when_their_owner_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pids = [int(pid) for pid in owner.stdout.readline().split()]
    assert len(pids) == 2
    assert all(_running(pid) for pid in pids)

    owner.send_signal(signal.SIGKILL)
    owner.wait(10)

    deadline = time.monotonic() + 20
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in pids if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"outlived their killed owner: {left} (broker, postgres)"


@pytest.mark.parametrize("server", [EmbeddedKafka, EmbeddedPostgres])
def test_a_server_whose_port_was_taken_meanwhile_starts_on_another(
    server: type[EmbeddedKafka] | type[EmbeddedPostgres], tmp_path: Path
) -> None:
    # What four test workers starting brokers at once met: between choosing a free port
    # and binding it, the port went to some client socket (bound, not listening).
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        started = (
            EmbeddedKafka(port=taken, log_path=tmp_path / "tansu.log")
            if server is EmbeddedKafka
            else EmbeddedPostgres(port=taken, durable=False)
        ).start()
        try:
            assert started.port != taken
            with socket.create_connection(("127.0.0.1", started.port), timeout=5):
                pass
        finally:
            started.stop()

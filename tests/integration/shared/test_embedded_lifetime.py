"""A killed test run (or `trialstream up`) leaves no embedded broker or PostgreSQL behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

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

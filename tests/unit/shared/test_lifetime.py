"""Children started with `tied_to_parent` end when the process that started them is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from trialstream.lifetime import tied_to_parent

# A parent that starts a long-sleeping child tied to it, says the child's pid, then waits.
PARENT = """
import subprocess, sys, time
from trialstream.lifetime import tied_to_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                         start_new_session=True, preexec_fn=tied_to_parent())
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its new parent (init) to reap it.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_in_its_own_session_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)

    parent.send_signal(signal.SIGKILL)
    parent.wait(10)

    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_it_is_not_offered_off_the_main_thread() -> None:
    # The kernel would signal the child when the starting thread ends, not the process.
    offered: list[object] = []
    worker = threading.Thread(target=lambda: offered.append(tied_to_parent()))
    worker.start()
    worker.join()
    assert offered == [None]

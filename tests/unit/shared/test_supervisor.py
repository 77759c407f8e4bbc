"""The local supervisor restarts a replica that dies and gives up on a crash loop."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from trialstream.supervisor import Supervisor, SupervisorError


def _wait_exit(supervisor: Supervisor) -> None:
    deadline = time.monotonic() + 10
    while any(c.process.poll() is None for c in supervisor.children):
        assert time.monotonic() < deadline, "child did not exit"
        time.sleep(0.02)


def test_a_dead_child_is_restarted_and_the_manifest_names_its_new_pid(tmp_path: Path) -> None:
    supervisor = Supervisor({}, tmp_path)
    child = supervisor.spawn("worker-1", [sys.executable, "-c", "print('hi')"], {}, None)
    first_pid = child.process.pid
    _wait_exit(supervisor)

    said = supervisor.restart_exited()

    assert len(said) == 1
    assert said[0].startswith("worker-1 exited with code 0; restarted as pid")
    assert child.process.pid != first_pid
    manifest = json.loads((tmp_path / "processes.json").read_text())
    assert manifest == [
        {
            "name": "worker-1",
            "pid": child.process.pid,
            "ready_url": None,
            "restarts": 1,
            "log": str(tmp_path / "worker-1.log"),
        }
    ]
    child.process.wait(10)
    assert (tmp_path / "worker-1.log").read_text().count("hi") == 2, "the log is appended to"


def test_a_crash_loop_stops_the_platform_with_the_childs_last_words(tmp_path: Path) -> None:
    supervisor = Supervisor({}, tmp_path)
    supervisor.spawn(
        "broken", [sys.executable, "-c", "import sys; print('no config'); sys.exit(3)"], {}, None
    )
    for _ in range(2):
        _wait_exit(supervisor)
        assert len(supervisor.restart_exited(max_restarts=2, window_s=60)) == 1
    _wait_exit(supervisor)
    with pytest.raises(SupervisorError, match=r"(?s)broken exited 3 times.*no config"):
        supervisor.restart_exited(max_restarts=2, window_s=60)


def test_a_running_child_is_left_alone(tmp_path: Path) -> None:
    supervisor = Supervisor({}, tmp_path)
    child = supervisor.spawn(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], {}, None
    )
    try:
        assert supervisor.restart_exited() == []
        assert child.restarts == []
    finally:
        supervisor.stop_all()


def test_with_restarts_off_a_dead_child_is_reported_once_and_left_down(tmp_path: Path) -> None:
    supervisor = Supervisor({}, tmp_path, restart=False)
    child = supervisor.spawn("worker-2", [sys.executable, "-c", "raise SystemExit(9)"], {}, None)
    _wait_exit(supervisor)

    assert supervisor.restart_exited() == [
        "worker-2 exited with code 9; not restarted (--no-restart)"
    ]
    assert supervisor.restart_exited() == []
    assert child.process.returncode == 9

"""Replay throughput on a generated fleet (not a test; run by hand):

    .venv/bin/python tests/unit/anomaly/bench_anomaly_replay.py [participants] [minutes]

Defaults give about 500,000 readings (200 participants x 16 h: heart rate and steps every
minute, SpO2, temperature and respiratory rate every 5 minutes). The file is written to a
temporary directory and deleted afterwards.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from anomaly.replay import replay_file
from anomaly_streams import write_fleet


def main(participants: int = 200, minutes: int = 960, runs: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, sink = Path(tmp) / "readings.jsonl", Path(tmp) / "alerts.jsonl"
        started = time.perf_counter()
        lines = write_fleet(source, participants, minutes)
        print(f"generated {lines:,} readings in {time.perf_counter() - started:.1f} s")
        for _ in range(runs):
            print(replay_file(source, sink).summary())


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))

"""CPU and peak memory of each process of the platform while a phase runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil


@dataclass
class Usage:
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class ResourceSampler:
    """Samples named process trees (a process and its children: PostgreSQL's backends)
    every `interval` seconds in a thread. CPU is the difference of CPU times between
    start and stop; RSS is the peak of the summed resident sizes (shared pages of
    PostgreSQL's backends are counted once per backend, so it overstates PostgreSQL)."""

    pids: Mapping[str, int]
    interval: float = 0.25
    alone: frozenset[str] = frozenset()  # names measured without their children
    _start: dict[str, float] = field(default_factory=dict)
    _usage: dict[str, Usage] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    seconds: float = 0.0

    def __enter__(self) -> ResourceSampler:
        self._usage = {name: Usage() for name in self.pids}
        self._start = {name: self._cpu(name, pid) for name, pid in self.pids.items()}
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.seconds = time.perf_counter() - self._t0
        for name, pid in self.pids.items():
            self._usage[name].cpu_seconds = self._cpu(name, pid) - self._start[name]

    def cores(self) -> dict[str, float]:
        """CPU used per process tree, in cores, unrounded."""
        return {
            name: u.cpu_seconds / self.seconds if self.seconds else 0.0
            for name, u in self._usage.items()
        }

    def report(self) -> dict[str, dict[str, float]]:
        cores = self.cores()
        return {
            name: {"cpu_cores": round(cores[name], 2), "peak_rss_mb": round(u.peak_rss_mb, 1)}
            for name, u in self._usage.items()
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                rss = sum(p.memory_info().rss for p in self._procs(name, pid)) / 2**20
                self._usage[name].peak_rss_mb = max(self._usage[name].peak_rss_mb, rss)

    def _procs(self, name: str, pid: int) -> list[psutil.Process]:
        if name in self.alone:
            try:
                return [psutil.Process(pid)]
            except psutil.Error:
                return []
        return _tree(pid)

    def _cpu(self, name: str, pid: int) -> float:
        total = 0.0
        for p in self._procs(name, pid):
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
        return total


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []

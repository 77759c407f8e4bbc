"""Offline scoring of a JSONL file of readings with the very code the live consumer runs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from trialstream.events.readings import ReadingReceived
from trialstream.validation import RecordRejected, normalise, parse_upload

from anomaly.domain import Scorer
from anomaly.rules import ScoringConfig

CHUNK = 5000


class ReplayError(Exception):
    """A line could not be scored and --strict was given."""


@dataclass
class ReplayStats:
    readings: int = 0
    rejected: int = 0
    alerts: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def _parse(line: str) -> ReadingReceived:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordRejected.one("(line)", "malformed_json", str(exc)) from None
    upload = parse_upload(raw)
    # Offline there is no server clock: a reading is "received" when it was measured.
    return normalise(upload, received_at=upload.measured_at, max_clock_skew=timedelta(0))


def _chunks(
    source: TextIO, stats: ReplayStats, strict: bool, errors: TextIO
) -> Iterator[list[ReadingReceived]]:
    chunk: list[ReadingReceived] = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            chunk.append(_parse(line))
        except RecordRejected as rejected:
            stats.rejected += 1
            message = f"line {number}: {rejected}"
            if strict:
                raise ReplayError(message) from None
            print(message, file=errors)
            continue
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def replay_file(
    input_path: Path,
    output_path: Path,
    *,
    strict: bool = False,
    config: ScoringConfig | None = None,
    errors: TextIO | None = None,
) -> ReplayStats:
    errors = errors or sys.stderr  # looked up per call, so a redirected stderr is honoured
    scorer = Scorer(config)
    stats = ReplayStats()
    started = time.perf_counter()
    with (
        input_path.open(encoding="utf-8") as source,
        output_path.open("w", encoding="utf-8") as sink,
    ):
        for chunk in _chunks(source, stats, strict, errors):
            stats.readings += len(chunk)
            for alert in scorer.score(chunk):
                sink.write(alert.model_dump_json() + "\n")
                stats.alerts += 1
    stats.seconds = time.perf_counter() - started
    return stats

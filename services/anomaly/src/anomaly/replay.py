"""Offline scoring of a JSONL file of readings with the very Scorer the live consumer runs.

Each line is one reading in the device contract. Lines are validated by the shared rules
(trialstream.validation) and scored in chunks, in file order, which plays the role of
arrival order. Offline there is no server clock, so a reading counts as received when it
was measured (no clock skew allowed or needed).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError
from trialstream.validation import FieldError, ReadingUpload, RecordRejected, check, parse_upload

from anomaly.columns import Columns
from anomaly.config import ScoringConfig
from anomaly.domain import Scorer

CHUNK = 5000  # the live consumer's batch size
SEGMENT_BYTES = 8 << 20  # a worker's unit of parsing
NO_SKEW = timedelta(0)
_VALIDATE_JSON = ReadingUpload.__pydantic_validator__.validate_json


class ReplayError(Exception):
    """An invalid line under strict mode; `line` is its 1-based number."""

    def __init__(self, line: int, rejected: RecordRejected) -> None:
        super().__init__(f"line {line}: {rejected}")
        self.line = line
        self.rejected = rejected


@dataclass
class ReplayStats:
    readings: int = 0  # valid readings scored
    rejected: int = 0  # invalid lines skipped
    alerts: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.readings} readings, {self.rejected} rejected, {self.alerts} alerts "
            f"in {self.seconds:.2f} s ({self.per_second:,.0f} readings/s)"
        )


def describe(line: int, rejected: RecordRejected) -> list[str]:
    """'line N: field: message', one per invalid field."""
    return [f"line {line}: {e.field}: {e.message}" for e in rejected.errors]


def parse_line(line: str) -> ReadingUpload:
    """One JSONL line to a validated reading. Raises RecordRejected."""
    try:
        # Fast path: the same model as below, through its validator (skips a wrapper call).
        upload = _VALIDATE_JSON(line)
    except ValidationError:
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordRejected.one("(line)", "malformed_json", f"not JSON: {exc}") from None
        upload = parse_upload(raw)  # raises with the shared per-field messages
    return check(upload, received_at=upload.measured_at, max_clock_skew=NO_SKEW)


Lines = list[tuple[int, str]]  # (1-based line number, text)
Rejections = list[tuple[int, tuple[FieldError, ...]]]
Parsed = list[tuple[Columns, Rejections]]


def _chunked(text_lines: list[str], first_number: int) -> Iterator[Lines]:
    chunk: Lines = []
    for number, line in enumerate(text_lines, start=first_number):
        if line.strip():
            chunk.append((number, line))
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def parse_chunk(lines: Lines) -> tuple[Columns, Rejections]:
    """Validate lines into columns, and say which were rejected."""
    valid: list[ReadingUpload] = []
    rejected: Rejections = []
    for number, line in lines:
        try:
            valid.append(parse_line(line))
        except RecordRejected as exc:
            rejected.append((number, exc.errors))
    return Columns.of(valid), rejected


def _segments(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges of `path` that start and end on line boundaries."""
    size = path.stat().st_size
    bounds = [0]
    with path.open("rb") as f:
        for k in range(1, parts):
            f.seek(max(size * k // parts, bounds[-1]))
            f.readline()
            bounds.append(min(f.tell(), size))
    bounds.append(size)
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def parse_segment(path: Path, start: int, end: int) -> tuple[Parsed, int]:
    """Parse one byte range (in a worker process): its chunks, with line numbers counted
    from 1 at the range's start, and how many lines it had."""
    with path.open("rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8")
    lines = text.split("\n")  # not splitlines(): JSON strings may hold U+2028 and friends
    if lines and lines[-1] == "":
        lines.pop()
    return [parse_chunk(chunk) for chunk in _chunked(lines, 1)], len(lines)


def _parsed(path: Path, workers: int) -> Iterator[tuple[Columns, Rejections]]:
    """Chunks in file order with absolute line numbers. With workers, the file is cut into
    byte ranges parsed in other processes while this one scores: parsing (pydantic
    validation per line) is most of replay's work, and only the arrays travel back."""
    if workers <= 0:
        segments = [parse_segment(path, *r) for r in _segments(path, 1)]
        yield from _numbered(iter(segments))
        return
    ranges = iter(_segments(path, max(4 * workers, path.stat().st_size // SEGMENT_BYTES)))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        # At most 2 ranges per worker parsed ahead: memory stays bounded on any file size.
        ahead = deque(
            pool.submit(parse_segment, path, *r) for r in itertools.islice(ranges, 2 * workers)
        )

        def results() -> Iterator[tuple[Parsed, int]]:
            while ahead:
                done = ahead.popleft().result()
                ahead.extend(
                    pool.submit(parse_segment, path, *r) for r in itertools.islice(ranges, 1)
                )
                yield done

        yield from _numbered(results())


def _numbered(segments: Iterator[tuple[Parsed, int]]) -> Iterator[tuple[Columns, Rejections]]:
    offset = 0
    for parsed, lines in segments:
        for columns, rejected in parsed:
            yield columns, [(offset + number, errors) for number, errors in rejected]
        offset += lines


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Replay makes millions of short-lived, acyclic objects (pydantic models) that
    reference counting frees at once; the cyclic collector rescanning them cost about a
    third of the run time. Paused for the replay only, then restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def replay_file(
    input_path: Path,
    output_path: Path,
    *,
    strict: bool = False,
    config: ScoringConfig | None = None,
    errors: TextIO | None = None,
    workers: int | None = None,
) -> ReplayStats:
    """Score `input_path` and write one AlertRaised JSON per line to `output_path`.

    Invalid lines are reported to `errors` (default: stderr) and skipped, or with
    `strict` raise ReplayError. The output appears only when the replay completes.
    `workers` parsing processes (default: one per core; 0 parses in this process). The
    scoring process needs about a third of the work, so it shares a core with a worker."""
    if workers is None:
        workers = os.cpu_count() or 1
    errors = errors or sys.stderr  # looked up per call, so a redirected stderr is honoured
    scorer = Scorer(config)
    stats = ReplayStats()
    partial = output_path.with_name(output_path.name + ".partial")
    started = time.perf_counter()
    try:
        with _cyclic_gc_paused(), partial.open("w", encoding="utf-8") as sink:
            for columns, rejected in _parsed(input_path, workers):
                for number, field_errors in rejected:
                    stats.rejected += 1
                    if strict:
                        raise ReplayError(number, RecordRejected(*field_errors))
                    print(*describe(number, RecordRejected(*field_errors)), sep="\n", file=errors)
                stats.readings += len(columns)
                alerts = scorer.score(columns)
                sink.writelines(alert.model_dump_json() + "\n" for alert in alerts)
                stats.alerts += len(alerts)
        os.replace(partial, output_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    stats.seconds = time.perf_counter() - started
    return stats

"""Discrepancy flag rules. Pure: numpy over a batch of reading summaries (one row per
device series of an upload, decision 0093), no database.

Each rule returns FlagCandidates. A candidate's `dedupe_key` names its episode: while a flag
with that key is open, more evidence raises nothing new; after staff close it, only
evidence newer than the closing raises a new flag (a redelivered old reading does not)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from trialstream.events.readings import ReadingsSummarised, SteepChange
from trialstream.reading_summaries import ROLLUP_SECONDS


class FlagKind(StrEnum):
    CLOCK_SKEW = "device-clock-skew"
    SHARED_DEVICE = "shared-device"
    AFTER_WITHDRAWAL = "reading-after-withdrawal"
    IMPLAUSIBLE_JUMP = "implausible-jump"
    EPRO_CONTRADICTS_WEARABLE = "epro-contradicts-wearable"


@dataclass(frozen=True)
class JumpRule:
    metric: str
    max_delta: float  # a change larger than this ...
    within_seconds: float  # ... between consecutive readings at most this far apart is a jump
    repeats: int  # this many jumps ...
    window_seconds: float  # ... within this long raise a flag


@dataclass(frozen=True)
class FlagRules:
    clock_ahead_seconds: float = 600.0
    clock_behind_seconds: float = 48 * 3600.0
    jumps: tuple[JumpRule, ...] = (
        JumpRule("heart-rate", 40.0, 60.0, 3, 3600.0),
        JumpRule("body-temperature", 2.0, 300.0, 1, 3600.0),
    )
    slot_seconds: int = 900
    diary_questionnaire: str = "daily-diary"
    diary_activity_score: str = "activity_level"
    diary_activity_at_most: float = 0.0
    diary_steps_at_least: float = 5000.0


@dataclass(frozen=True)
class FlagCandidate:
    dedupe_key: str
    participant_id: str
    kind: FlagKind
    reason: str
    evidence: dict[str, Any]
    evidence_at: datetime  # when the evidence reached us (closing suppresses older evidence)


def records(names: str, *columns: NDArray[Any]) -> NDArray[Any]:
    """Columns as one structured array (sortable, np.unique-able as rows)."""
    fields = names.split(",")
    out = np.empty(
        len(columns[0]), dtype=[(n, c.dtype) for n, c in zip(fields, columns, strict=True)]
    )
    for name, column in zip(fields, columns, strict=True):
        out[name] = column
    return out


def unique_rows(rows: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.intp]]:
    """Distinct rows and, for each input row, the index of its distinct row."""
    found, inverse = np.unique(rows, return_inverse=True)
    return found, np.asarray(inverse, dtype=np.intp).ravel()


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), UTC)


def _iso(seconds: float) -> str:
    return _ts(seconds).isoformat()


@dataclass
class SummaryBatch:
    """A batch of reading summaries as columns, built once and shared by every rule: one row
    per device series (a device's readings of one metric in one upload), and one row per
    5-minute rollup bucket."""

    participant: NDArray[np.str_]
    device: NDArray[np.str_]
    metric: NDArray[np.str_]
    first: NDArray[np.float64]  # epoch seconds of the series' first reading ...
    first_value: NDArray[np.float64]
    last: NDArray[np.float64]  # ... and of its last
    last_value: NDArray[np.float64]
    received: NDArray[np.float64]  # epoch seconds (ingest's occurred_at of the upload)
    steep: list[list[SteepChange]]
    bucket_participant: NDArray[np.str_]
    bucket: NDArray[np.float64]  # epoch seconds of the bucket's start

    @classmethod
    def of(cls, summaries: Sequence[ReadingsSummarised]) -> SummaryBatch:
        rows = [(s, x) for s in summaries for x in s.series]
        buckets = [(s.participant_id, b) for s in summaries for b in s.rollups.bucket]

        def floats(values: Any) -> NDArray[np.float64]:
            return np.fromiter(values, np.float64, len(rows))

        return cls(
            participant=np.array([s.participant_id for s, _ in rows], dtype=np.str_),
            device=np.array([x.device_id for _, x in rows], dtype=np.str_),
            metric=np.array([str(x.metric) for _, x in rows], dtype=np.str_),
            first=floats(x.first_at.timestamp() for _, x in rows),
            first_value=floats(x.first_value for _, x in rows),
            last=floats(x.last_at.timestamp() for _, x in rows),
            last_value=floats(x.last_value for _, x in rows),
            received=floats(s.occurred_at.timestamp() for s, _ in rows),
            steep=[x.steep for _, x in rows],
            bucket_participant=np.array([p for p, _ in buckets], dtype=np.str_),
            bucket=np.fromiter((b.timestamp() for _, b in buckets), np.float64, len(buckets)),
        )

    def __len__(self) -> int:
        return len(self.last)


def clock_skew(batch: SummaryBatch, rules: FlagRules) -> list[FlagCandidate]:
    """Judged on the newest reading of each upload and device. Ahead: measured after it was
    received is impossible without a fast clock. Behind: an offline backlog has old
    readings but its newest one is recent, whereas a slow clock makes even the newest
    reading of the upload old."""
    out: dict[str, FlagCandidate] = {}
    if not len(batch):
        return []
    uploads, upload_of = unique_rows(
        records("p,d,r", batch.participant, batch.device, batch.received)
    )
    newest = np.full(len(uploads), -np.inf)
    np.maximum.at(newest, upload_of, batch.last)
    skew = newest - uploads["r"]
    for g in np.flatnonzero(skew > rules.clock_ahead_seconds):
        participant, device = str(uploads["p"][g]), str(uploads["d"][g])
        key = f"{FlagKind.CLOCK_SKEW}:{participant}:{device}:ahead"
        seconds = float(skew[g])
        out.setdefault(
            key,
            FlagCandidate(
                key,
                participant,
                FlagKind.CLOCK_SKEW,
                f"Device {device} stamped a reading {seconds / 60:.0f} min after it "
                "was received: its clock is ahead.",
                {
                    "device_id": device,
                    "direction": "ahead",
                    "measured_at": _iso(newest[g]),
                    "received_at": _iso(uploads["r"][g]),
                    "skew_seconds": round(seconds, 1),
                    "limit_seconds": rules.clock_ahead_seconds,
                },
                _ts(uploads["r"][g]),
            ),
        )
    for g in np.flatnonzero(-skew > rules.clock_behind_seconds):
        participant, device = str(uploads["p"][g]), str(uploads["d"][g])
        received, lag = float(uploads["r"][g]), float(-skew[g])
        key = f"{FlagKind.CLOCK_SKEW}:{participant}:{device}:behind"
        out.setdefault(
            key,
            FlagCandidate(
                key,
                participant,
                FlagKind.CLOCK_SKEW,
                f"The newest reading of an upload from device {device} was measured "
                f"{lag / 3600:.1f} h before it was received: the device clock is behind, or "
                "it held its data that long before uploading.",
                {
                    "device_id": device,
                    "direction": "behind",
                    "newest_measured_at": _iso(newest[g]),
                    "received_at": _iso(received),
                    "lag_hours": round(lag / 3600, 2),
                    "limit_hours": rules.clock_behind_seconds / 3600,
                },
                _ts(received),
            ),
        )
    return list(out.values())


def after_withdrawal(batch: SummaryBatch, withdrawn_at: dict[str, datetime]) -> list[FlagCandidate]:
    """Readings measured after the participant withdrew (whatever ingest did with them). A
    summary gives each device series' ends, not every reading, so the evidence names the
    earliest reading known to be after the withdrawal and no count."""
    if not withdrawn_at or not len(batch):
        return []
    limit = np.array(
        [withdrawn_at[p].timestamp() if p in withdrawn_at else np.inf for p in batch.participant]
    )
    late = np.flatnonzero(batch.last > limit)
    # a series that began after the withdrawal shows its first reading, else its last
    known = np.where(batch.first > limit, batch.first, batch.last)
    out: dict[str, FlagCandidate] = {}
    for participant in dict.fromkeys(str(p) for p in batch.participant[late]):
        rows = late[batch.participant[late] == participant]
        out[participant] = withdrawal_flag(
            participant,
            withdrawn_at[participant],
            measured_at=_ts(known[rows].min()),
            device_ids=sorted({str(d) for d in batch.device[rows]}),
            readings=None,
            evidence_at=_ts(batch.received[rows].max()),
        )
    return list(out.values())


def withdrawal_flag(
    participant: str,
    withdrawn: datetime,
    *,
    measured_at: datetime,
    device_ids: list[str],
    readings: int | None,
    evidence_at: datetime,
) -> FlagCandidate:
    return FlagCandidate(
        f"{FlagKind.AFTER_WITHDRAWAL}:{participant}",
        participant,
        FlagKind.AFTER_WITHDRAWAL,
        f"Readings measured after the participant withdrew ({withdrawn.isoformat()}) "
        f"reached monitoring, from device(s) {', '.join(device_ids)}.",
        {
            "withdrawn_at": withdrawn.isoformat(),
            "measured_at": measured_at.isoformat(),
            "device_ids": device_ids,
            "readings": readings,
        },
        evidence_at,
    )


def shared_device(
    device: str, participants: Sequence[str], evidence_at: datetime
) -> list[FlagCandidate]:
    """One flag per participant involved, so each one's site sees it."""
    names = sorted(set(participants))
    return [
        FlagCandidate(
            f"{FlagKind.SHARED_DEVICE}:{device}:{p}",
            p,
            FlagKind.SHARED_DEVICE,
            f"Device {device} sent readings for {len(names)} participants: "
            f"{', '.join(names)}. A device must belong to one participant.",
            {"device_id": device, "participants": names},
            evidence_at,
        )
        for p in names
    ]


@dataclass(frozen=True)
class Jump:
    participant: str
    device: str
    metric: str
    at: datetime  # measured_at of the reading after the jump
    delta: float
    seconds: float


def jumps(
    batch: SummaryBatch,
    rules: FlagRules,
    previous: dict[tuple[str, str, str], tuple[float, float]],
) -> list[Jump]:
    """Consecutive readings of one device and metric that changed by more than the rule's
    delta within its time: the steep changes within each upload, and the change from the
    reading before an upload to its first. `previous` (key -> (measured epoch, value)) is
    the last reading before this batch; within the batch, the series before."""
    out: list[Jump] = []
    by_metric = {r.metric: r for r in rules.jumps}
    last = dict(previous)
    for i in np.lexsort((batch.first, batch.device, batch.participant)):
        rule = by_metric.get(str(batch.metric[i]))
        if rule is None:
            continue
        key = (str(batch.participant[i]), str(batch.device[i]), rule.metric)
        before = last.get(key)
        if before is not None and before[0] < batch.first[i]:
            dt, dv = batch.first[i] - before[0], batch.first_value[i] - before[1]
            if dt <= rule.within_seconds and abs(dv) > rule.max_delta:
                out.append(Jump(*key, _ts(batch.first[i]), float(dv), float(dt)))
        out += [
            Jump(*key, change.at, change.delta, change.seconds)
            for change in batch.steep[i]
            if change.seconds <= rule.within_seconds and abs(change.delta) > rule.max_delta
        ]
        if before is None or batch.last[i] > before[0]:
            last[key] = (float(batch.last[i]), float(batch.last_value[i]))
    return out


def jump_flag(
    rule: JumpRule, participant: str, device: str, recent: Sequence[Jump], evidence_at: datetime
) -> FlagCandidate:
    """`recent`: the jumps of one device and metric within the rule's window (>= repeats)."""
    unit = "beats/min" if rule.metric == "heart-rate" else "C"
    biggest = max(recent, key=lambda j: abs(j.delta))
    return FlagCandidate(
        f"{FlagKind.IMPLAUSIBLE_JUMP}:{participant}:{device}:{rule.metric}",
        participant,
        FlagKind.IMPLAUSIBLE_JUMP,
        f"{rule.metric} jumped by more than {rule.max_delta:g} {unit} within "
        f"{rule.within_seconds:g} s {len(recent)} time(s) within {rule.window_seconds / 60:g} min "
        f"on device {device} (largest {biggest.delta:+.1f} {unit}): implausible physiology, "
        "likely a loose or faulty sensor.",
        {
            "device_id": device,
            "metric": rule.metric,
            "jumps": [
                {"at": j.at.isoformat(), "delta": round(j.delta, 2), "seconds": round(j.seconds, 1)}
                for j in sorted(recent, key=lambda j: j.at)
            ],
            "limit": rule.max_delta,
            "within_seconds": rule.within_seconds,
            "repeats": rule.repeats,
        },
        evidence_at,
    )


def epro_contradicts_wearable(
    participant: str,
    local_day: str,
    activity: float,
    steps: float,
    rules: FlagRules,
    response_id: str,
    evidence_at: datetime,
) -> FlagCandidate | None:
    """A diary saying 'no activity / stayed in bed' on a day the wearable counted many steps."""
    if activity > rules.diary_activity_at_most or steps < rules.diary_steps_at_least:
        return None
    return FlagCandidate(
        f"{FlagKind.EPRO_CONTRADICTS_WEARABLE}:{participant}:{local_day}",
        participant,
        FlagKind.EPRO_CONTRADICTS_WEARABLE,
        f"The daily diary of {local_day} reports no activity, but the wearable counted "
        f"{steps:.0f} steps that day (at least {rules.diary_steps_at_least:g} contradicts it).",
        {
            "local_day": local_day,
            "questionnaire_id": rules.diary_questionnaire,
            "response_id": response_id,
            "score": rules.diary_activity_score,
            "activity": activity,
            "steps": steps,
            "steps_limit": rules.diary_steps_at_least,
        },
        evidence_at,
    )


def slots(batch: SummaryBatch, slot_seconds: int) -> tuple[list[str], list[datetime]]:
    """Distinct (participant, slot start) pairs with data, from the 5-minute rollup buckets
    (a slot is a whole number of buckets): wear time, idempotent by nature."""
    if slot_seconds % ROLLUP_SECONDS:
        raise ValueError(f"a wear slot must be a multiple of {ROLLUP_SECONDS} s")
    if not len(batch.bucket):
        return [], []
    start = np.floor(batch.bucket / slot_seconds).astype(np.int64) * slot_seconds
    pairs, _ = unique_rows(records("p,s", batch.bucket_participant, start))
    return [str(p) for p in pairs["p"]], [_ts(s) for s in pairs["s"]]

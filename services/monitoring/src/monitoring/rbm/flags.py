"""Discrepancy flag rules. Pure: numpy over a batch of readings, no database.

Each rule returns FlagCandidates. A candidate's `dedupe_key` names its episode: while a flag
with that key is open, more evidence raises nothing new; after staff close it, only
evidence newer than the closing raises a new flag (a redelivered old reading does not)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from trialstream.events.readings import ReadingReceived


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
class ReadingBatch:
    """A batch of readings as columns, built once and shared by every rule."""

    participant: NDArray[np.str_]
    device: NDArray[np.str_]
    metric: NDArray[np.str_]
    value: NDArray[np.float64]
    measured: NDArray[np.float64]  # epoch seconds
    received: NDArray[np.float64]  # epoch seconds (ingest's occurred_at)
    event_ids: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, readings: Sequence[ReadingReceived]) -> ReadingBatch:
        return cls(
            participant=np.array([r.participant_id for r in readings], dtype=np.str_),
            device=np.array([r.device_id for r in readings], dtype=np.str_),
            metric=np.array([str(r.metric) for r in readings], dtype=np.str_),
            value=np.fromiter((r.value for r in readings), np.float64, len(readings)),
            measured=np.fromiter(
                (r.measured_at.timestamp() for r in readings), np.float64, len(readings)
            ),
            received=np.fromiter(
                (r.occurred_at.timestamp() for r in readings), np.float64, len(readings)
            ),
            event_ids=[r.event_id for r in readings],
        )

    def __len__(self) -> int:
        return len(self.measured)


def clock_skew(batch: ReadingBatch, rules: FlagRules) -> list[FlagCandidate]:
    """Ahead: a reading measured after it was received is impossible without a fast clock.
    Behind: ingest stamps one received time per upload, so (device, received) is one upload;
    an offline backlog has old readings but its newest one is recent, whereas a slow clock
    makes even the newest reading of the upload old. Only the newest one is judged."""
    out: list[FlagCandidate] = []
    if not len(batch):
        return out
    ahead = batch.measured - batch.received > rules.clock_ahead_seconds
    for i in np.flatnonzero(ahead):
        key = f"{FlagKind.CLOCK_SKEW}:{batch.participant[i]}:{batch.device[i]}:ahead"
        if any(c.dedupe_key == key for c in out):
            continue
        seconds = float(batch.measured[i] - batch.received[i])
        out.append(
            FlagCandidate(
                key,
                str(batch.participant[i]),
                FlagKind.CLOCK_SKEW,
                f"Device {batch.device[i]} stamped a reading {seconds / 60:.0f} min after it "
                "was received: its clock is ahead.",
                {
                    "device_id": str(batch.device[i]),
                    "direction": "ahead",
                    "measured_at": _iso(batch.measured[i]),
                    "received_at": _iso(batch.received[i]),
                    "skew_seconds": round(seconds, 1),
                    "limit_seconds": rules.clock_ahead_seconds,
                },
                _ts(batch.received[i]),
            )
        )
    uploads, upload_of = unique_rows(
        records("p,d,r", batch.participant, batch.device, batch.received)
    )
    newest = np.full(len(uploads), -np.inf)
    np.maximum.at(newest, upload_of, batch.measured)
    lags = uploads["r"] - newest
    for g in np.flatnonzero(lags > rules.clock_behind_seconds):
        participant, device = str(uploads["p"][g]), str(uploads["d"][g])
        received, lag = float(uploads["r"][g]), float(lags[g])
        key = f"{FlagKind.CLOCK_SKEW}:{participant}:{device}:behind"
        if any(c.dedupe_key == key for c in out):
            continue
        out.append(
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
            )
        )
    return out


def after_withdrawal(batch: ReadingBatch, withdrawn_at: dict[str, datetime]) -> list[FlagCandidate]:
    """Readings measured after the participant withdrew (whatever ingest did with them)."""
    if not withdrawn_at or not len(batch):
        return []
    limit = np.array(
        [withdrawn_at[p].timestamp() if p in withdrawn_at else np.inf for p in batch.participant]
    )
    late = np.flatnonzero(batch.measured > limit)
    out: dict[str, FlagCandidate] = {}
    for i in late:
        participant = str(batch.participant[i])
        if participant in out:
            continue
        rows = late[batch.participant[late] == participant]
        first = rows[np.argmin(batch.measured[rows])]
        out[participant] = withdrawal_flag(
            participant,
            withdrawn_at[participant],
            measured_at=_ts(batch.measured[first]),
            device_ids=sorted({str(d) for d in batch.device[rows]}),
            readings=len(rows),
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
    batch: ReadingBatch,
    rules: FlagRules,
    previous: dict[tuple[str, str, str], tuple[float, float]],
) -> list[Jump]:
    """Consecutive readings of one device and metric that changed by more than the rule's
    delta within its time. `previous` (key -> (measured epoch, value)) is the last reading
    before this batch, so a jump across two batches counts too."""
    out: list[Jump] = []
    for rule in rules.jumps:
        idx = np.flatnonzero(batch.metric == rule.metric)
        if not len(idx):
            continue
        part, dev = batch.participant[idx], batch.device[idx]
        t, v = batch.measured[idx], batch.value[idx]
        keys = np.char.add(np.char.add(part, "\x1f"), dev)
        order = np.lexsort((t, keys))
        keys, part, dev, t, v = keys[order], part[order], dev[order], t[order], v[order]
        prev_t, prev_v = np.empty_like(t), np.empty_like(v)
        prev_t[1:], prev_v[1:] = t[:-1], v[:-1]
        first = np.ones(len(t), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        for i in np.flatnonzero(first):
            last = previous.get((str(part[i]), str(dev[i]), rule.metric))
            prev_t[i], prev_v[i] = last if last and last[0] < t[i] else (np.nan, np.nan)
        dt, dv = t - prev_t, v - prev_v
        with np.errstate(invalid="ignore"):
            hit = (dt > 0) & (dt <= rule.within_seconds) & (np.abs(dv) > rule.max_delta)
        for i in np.flatnonzero(hit):
            out.append(
                Jump(str(part[i]), str(dev[i]), rule.metric, _ts(t[i]), float(dv[i]), float(dt[i]))
            )
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


def slots(batch: ReadingBatch, slot_seconds: int) -> tuple[list[str], list[datetime]]:
    """Distinct (participant, slot start) pairs with data: wear time, idempotent by nature."""
    if not len(batch):
        return [], []
    start = np.floor(batch.measured / slot_seconds).astype(np.int64) * slot_seconds
    pairs, _ = unique_rows(records("p,s", batch.participant, start))
    return [str(p) for p in pairs["p"]], [_ts(s) for s in pairs["s"]]

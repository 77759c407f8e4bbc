"""Walk a schema's audit chain and report the first broken link (see trialstream.audit)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trialstream.audit import COLUMNS, GENESIS, AuditEntry
from trialstream.db import DbConnection

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TRIGGER = "audit_trail_append_only"
_TRIGGER_STATE = """
SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = $2
"""


@dataclass(frozen=True)
class Head:
    """The last entry of a chain as published: `<seq>:<hash>`. Comparing a later chain with
    a head kept elsewhere finds rows deleted from the end, which no link inside can show."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq, sep, digest = text.strip().partition(":")
        if not sep or not seq.isdigit() or int(seq) < 1 or not _HEX64.fullmatch(digest):
            raise ValueError(f"{text!r} is not a chain head <seq>:<64 hex digits>")
        return cls(int(seq), digest)


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    problem: str  # missing_table | trigger_missing | missing_seq | prev_hash | hash | truncated | head_mismatch
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.problem}: {self.detail}"


@dataclass(frozen=True)
class ChainReport:
    schema: str
    rows: int  # rows checked (up to the first broken link)
    head: Head | None  # the last row that verified
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _short(digest: str) -> str:
    return digest[:12]


def check_link(entry: AuditEntry, expected_seq: int, prev_hash: str) -> BrokenLink | None:
    """The checks on one row, in the order that names the cause best."""
    if entry.seq != expected_seq:
        what = "is missing" if entry.seq > expected_seq else "appears again or out of order"
        return BrokenLink(
            expected_seq,
            "missing_seq",
            f"seq {expected_seq} {what} (the next row is seq {entry.seq})",
        )
    if entry.prev_hash != prev_hash:
        before = "the genesis value" if expected_seq == 1 else f"the hash of seq {expected_seq - 1}"
        return BrokenLink(
            entry.seq,
            "prev_hash",
            f"prev_hash {_short(entry.prev_hash)}... is not {before} ({_short(prev_hash)}...): "
            "the row before was rewritten, or this row was moved or forged",
        )
    computed = entry.computed_hash()
    if entry.hash != computed:
        return BrokenLink(
            entry.seq,
            "hash",
            f"stored hash {_short(entry.hash)}... but the row's fields hash to "
            f"{_short(computed)}...: the row was edited",
        )
    return None


async def verify_chain(
    conn: DbConnection, schema: str, *, expect_head: Head | None = None, prefetch: int = 2000
) -> ChainReport:
    """Verify `schema`'s chain in one consistent snapshot; `expect_head` is a head published
    earlier, which must still be part of the chain."""
    table = f'"{schema}".audit_trail'
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        missing = BrokenLink(
            0, "missing_table", f"{table} does not exist (dropped, or not migrated)"
        )
        return ChainReport(schema, 0, None, missing)
    guard = await conn.fetchval(_TRIGGER_STATE, table, _TRIGGER)
    if guard != "O":  # 'O': fires in normal sessions; 'D' disabled; None: dropped
        state = "dropped" if guard is None else "disabled"
        detail = f"the append-only trigger {_TRIGGER} on {table} is {state}"
        return ChainReport(schema, 0, None, BrokenLink(0, "trigger_missing", detail))
    rows, prev, head, anchored = 0, GENESIS, None, None
    query = f"SELECT {COLUMNS} FROM {table} ORDER BY seq"  # noqa: S608 - schema from ServiceInfo
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(query, prefetch=prefetch):
            entry = AuditEntry.from_row(row)
            broken = check_link(entry, rows + 1, prev)
            if broken is not None:
                return ChainReport(schema, rows, head, broken)
            rows, prev, head = rows + 1, entry.hash, Head(entry.seq, entry.hash)
            if expect_head is not None and entry.seq == expect_head.seq:
                anchored = entry.hash
    return ChainReport(schema, rows, head, _against(expect_head, head, anchored))


def _against(expected: Head | None, head: Head | None, anchored: str | None) -> BrokenLink | None:
    if expected is None:
        return None
    if anchored is None:
        last = head.seq if head else 0
        return BrokenLink(
            expected.seq,
            "truncated",
            f"the chain ends at seq {last} but seq {expected.seq} was published as its head: "
            "rows were deleted from the end",
        )
    if anchored != expected.hash:
        return BrokenLink(
            expected.seq,
            "head_mismatch",
            f"seq {expected.seq} hashes to {_short(anchored)}..., the published head says "
            f"{_short(expected.hash)}...: the chain was rewritten from there on",
        )
    return None

"""The hash-chained audit trail: who changed what, when, from what to what, and why.

Every service schema holds one chain (table `audit_trail`, shared migration 0002). A row's
`hash` is SHA-256 over the canonical JSON of its own fields and `prev_hash`, the hash of
the row before it; editing, deleting or reordering rows breaks a link that
`trialstream audit verify` (trialstream.audit_verify) finds. See docs/audit.md.

`record()` appends inside the caller's transaction, so the entry commits or rolls back
with the change it describes. Appends in one schema serialise on a transaction-scoped
advisory lock taken before the chain head is read: whatever the number of replicas,
the chain order is the commit order. The lock is held until the caller commits, so call
`record()` as the last write of a transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import asyncpg

from trialstream.db import DbConnection

GENESIS = "0" * 64  # prev_hash of seq 1
# First key of the two-key advisory lock ('audi'); the second is the schema's hash. The
# two-key space is separate from the one-key locks (hashtext) migrations take.
LOCK_CLASS = 0x61756469

_LOCK = """
SELECT current_setting('transaction_isolation') AS isolation
FROM pg_advisory_xact_lock($1::int, hashtext(current_schema()))
"""
# A statement of its own after the lock: under READ COMMITTED it sees every append that
# committed before the lock was granted.
_HEAD = """
SELECT clock_timestamp() AS now, h.seq, h.hash
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1) AS h ON true
"""
_INSERT = """
INSERT INTO audit_trail (seq, occurred_at, actor, action, entity, entity_id, old, new, reason,
                         prev_hash, hash, actor_detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""
_INSERT_TEXT = """
INSERT INTO audit_erasable_text (seq, subject, salt, text) VALUES ($1, $2, $3, $4)
"""
_ERASE_TEXT = "DELETE FROM audit_erasable_text WHERE subject = $1 RETURNING seq"
COLUMNS = (
    "seq, occurred_at, actor, action, entity, entity_id, old, new, reason, prev_hash, hash,"
    " actor_detail"
)
_FOR_ENTITY = f"""
SELECT {COLUMNS} FROM audit_trail
WHERE ($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR entity_id = $2)
ORDER BY seq DESC LIMIT $3
"""  # noqa: S608 - constant column list

# Pseudonymous actors only: a staff id, 'admin', or '<kind>:<id>' (a staff member is
# 'staff:<subject of their access token>'). No spaces or '@', so an
# email address or a person's name cannot be passed by mistake.
_ACTOR = re.compile(
    r"^(admin|(participant|device|system|staff):[A-Za-z0-9_.:|-]{1,255}|[A-Za-z][A-Za-z0-9_.-]{1,63})$"
)

Value = Mapping[str, Any] | Sequence[Any] | str | int | float | bool | None


class AuditError(ValueError):
    pass


def utc_iso(moment: datetime) -> str:
    """The one timestamp spelling in hashes: UTC, microseconds, 'Z'."""
    if moment.tzinfo is None:
        raise AuditError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot put a {type(value).__name__} in an audit entry")


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, UTF-8 text as is: one spelling per value."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_jsonable,
    )


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    old: str | None  # canonical JSON text, as stored and hashed
    new: str | None
    reason: str | None
    prev_hash: str
    hash: str
    actor_detail: str | None = None  # canonical JSON {"name", "role"} of a staff actor

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | asyncpg.Record) -> AuditEntry:
        return cls(**{name: row[name] for name in COLUMNS.split(", ")})

    def document(self) -> dict[str, object]:
        """What the hash covers: every field but the hash itself (`actor_detail` only when
        present, so entries written before it existed keep their hash)."""
        document: dict[str, object] = {
            "seq": self.seq,
            "occurred_at": utc_iso(self.occurred_at),
            "actor": self.actor,
            "action": self.action,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
            "prev_hash": self.prev_hash,
        }
        if self.actor_detail is not None:
            document["actor_detail"] = self.actor_detail
        return document

    def computed_hash(self) -> str:
        return entry_hash(self.document())

    def as_dict(self) -> dict[str, Any]:
        """For display: old and new decoded back to values."""
        out = {**self.document(), "hash": self.hash}
        out["old"] = None if self.old is None else json.loads(self.old)
        out["new"] = None if self.new is None else json.loads(self.new)
        out["actor_detail"] = None if self.actor_detail is None else json.loads(self.actor_detail)
        return out


def entry_hash(document: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def _encoded(value: Value) -> str | None:
    return None if value is None else canonical_json(value)


async def record(
    conn: DbConnection,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    old: Value = None,
    new: Value = None,
    reason: str | None = None,
    actor_detail: Mapping[str, str] | None = None,
    erasable_reason: str | None = None,
    subject: str | None = None,
) -> AuditEntry:
    """Append one entry to this schema's chain, inside the caller's open transaction.
    `actor_detail` names a staff actor as their token does (`trialstream.staff.acting`).
    `erasable_reason`: free text that could identify `subject` (a participant id) goes to
    the side table `audit_erasable_text`, the chained `reason` keeping only a salted
    SHA-256 of it, so erasing it (`erase_text_of`) leaves the chain intact (decision 0087)."""
    salt = None
    if erasable_reason is not None:
        if reason is not None or subject is None:
            raise AuditError("erasable_reason needs a subject and replaces reason")
        salt = secrets.token_hex(16)
        reason = "sha256:" + hashlib.sha256((salt + erasable_reason).encode()).hexdigest()
    if not conn.is_in_transaction():
        # Outside a transaction the advisory lock would be released at once and two
        # appenders could both chain onto the same head.
        raise AuditError("audit.record() must run inside the transaction of the change")
    if not _ACTOR.fullmatch(actor):
        raise AuditError(f"actor {actor!r} is not a pseudonymous actor id")
    old_text, new_text = _encoded(old), _encoded(new)  # bad values fail before the lock
    detail = _encoded(actor_detail)
    isolation = await conn.fetchval(_LOCK, LOCK_CLASS)
    if isolation != "read committed":
        # A snapshot taken before the lock was granted cannot see the previous append.
        raise AuditError(f"audit.record() needs READ COMMITTED, not {isolation}")
    head = await conn.fetchrow(_HEAD)
    assert head is not None
    seq = 1 if head["seq"] is None else head["seq"] + 1
    prev = GENESIS if head["hash"] is None else head["hash"]
    draft = AuditEntry(
        seq,
        head["now"],
        actor,
        action,
        entity,
        entity_id,
        old_text,
        new_text,
        reason,
        prev,
        "",
        detail,
    )
    entry = AuditEntry(**{**draft.__dict__, "hash": draft.computed_hash()})
    await conn.execute(
        _INSERT,
        entry.seq,
        entry.occurred_at,
        entry.actor,
        entry.action,
        entry.entity,
        entry.entity_id,
        entry.old,
        entry.new,
        entry.reason,
        entry.prev_hash,
        entry.hash,
        entry.actor_detail,
    )
    if salt is not None:
        await conn.execute(_INSERT_TEXT, entry.seq, subject, salt, erasable_reason)
    return entry


async def erase_text_of(conn: DbConnection, subject: str) -> int:
    """Delete the free text audit entries hold about `subject` (erasure): the chained rows
    keep their salted digests, which nothing can now be checked against."""
    deleted = await conn.fetch(_ERASE_TEXT, subject)
    return len(deleted)


def is_digest(reason: str | None) -> bool:
    """Whether a chained `reason` is the digest of text kept off the chain."""
    return reason is not None and reason.startswith("sha256:")


async def erasable_texts(conn: DbConnection | asyncpg.Pool, seqs: Sequence[int]) -> dict[int, str]:
    """The free text of these entries still held (erased ones are missing)."""
    rows = await conn.fetch(
        "SELECT seq, text FROM audit_erasable_text WHERE seq = ANY($1::bigint[])", list(seqs)
    )
    return {r["seq"]: r["text"] for r in rows}


async def erasable_text(conn: DbConnection | asyncpg.Pool, seq: int) -> str | None:
    """The free text of entry `seq`, while it has not been erased."""
    found: str | None = await conn.fetchval(
        "SELECT text FROM audit_erasable_text WHERE seq = $1", seq
    )
    return found


async def entries(
    conn: DbConnection | asyncpg.Pool,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    limit: int = 1000,
) -> list[AuditEntry]:
    """An entity's entries (or the latest ones), oldest first."""
    rows = await conn.fetch(_FOR_ENTITY, entity, entity_id, limit)
    return [AuditEntry.from_row(r) for r in reversed(rows)]

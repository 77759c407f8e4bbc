"""Canonical serialisation and the per-row link checks of the audit chain (no database)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from uuid import UUID

import pytest
from trialstream.audit import GENESIS, AuditEntry, AuditError, canonical_json, entry_hash, utc_iso
from trialstream.audit_verify import Head, check_link


class Status(StrEnum):
    OPEN = "open"


def entry(seq: int = 1, prev: str = GENESIS, **changes: object) -> AuditEntry:
    draft = AuditEntry(
        seq=seq,
        occurred_at=datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC),
        actor="nurse-a1",
        action="alert.acknowledged",
        entity="alert",
        entity_id="a-1",
        old='"open"',
        new='"acknowledged"',
        reason="called participant",
        prev_hash=prev,
        hash="",
    )
    draft = replace(draft, **changes)  # type: ignore[arg-type]
    return replace(draft, hash=draft.computed_hash())


def test_canonical_json_sorts_keys_and_has_no_whitespace() -> None:
    assert (
        canonical_json({"b": 1, "a": {"d": [1, 2], "c": None}})
        == '{"a":{"c":null,"d":[1,2]},"b":1}'
    )


def test_canonical_json_keeps_unicode_and_spells_times_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    value = {"note": "Fièvre ✓", "at": datetime(2026, 3, 1, 9, 30, tzinfo=paris)}
    assert canonical_json(value) == '{"at":"2026-03-01T08:30:00.000000Z","note":"Fièvre ✓"}'


def test_canonical_json_spells_enums_uuids_and_sets_one_way() -> None:
    value = {"s": Status.OPEN, "id": UUID(int=1), "tags": {"b", "a"}}
    assert canonical_json(value) == (
        '{"id":"00000000-0000-0000-0000-000000000001","s":"open","tags":["a","b"]}'
    )


def test_naive_timestamps_and_nan_are_refused() -> None:
    with pytest.raises(AuditError):
        utc_iso(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})


def test_the_hash_is_sha256_of_the_sorted_compact_document() -> None:
    e = entry()
    text = (
        '{"action":"alert.acknowledged","actor":"nurse-a1","entity":"alert","entity_id":"a-1",'
        '"new":"\\"acknowledged\\"","occurred_at":"2026-11-25T10:00:00.123456Z","old":"\\"open\\"",'
        f'"prev_hash":"{GENESIS}","reason":"called participant","seq":1}}'
    )
    assert e.hash == hashlib.sha256(text.encode()).hexdigest()
    assert entry_hash(e.document()) == e.hash


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "nurse-b2"),
        ("reason", "called participant "),
        ("new", '"open"'),
        ("old", None),
        ("occurred_at", datetime(2026, 11, 25, 10, 0, 0, 123457, tzinfo=UTC)),
        ("entity_id", "a-2"),
    ],
)
def test_any_edited_field_changes_the_hash(field: str, value: object) -> None:
    original = entry()
    edited = replace(original, **{field: value})  # type: ignore[arg-type]
    assert edited.computed_hash() != original.hash
    broken = check_link(edited, 1, GENESIS)
    assert broken is not None
    assert (broken.seq, broken.problem) == (1, "hash")


def test_links_check_seq_then_prev_hash_then_hash() -> None:
    first = entry()
    second = entry(seq=2, prev=first.hash)
    assert check_link(first, 1, GENESIS) is None
    assert check_link(second, 2, first.hash) is None
    gap = check_link(second, 1, GENESIS)
    assert gap is not None
    assert (gap.seq, gap.problem) == (1, "missing_seq")
    moved = check_link(second, 2, "f" * 64)
    assert moved is not None
    assert (moved.seq, moved.problem) == (2, "prev_hash")


def test_a_head_parses_from_its_printed_form() -> None:
    head = Head(12, "ab" * 32)
    assert Head.parse(str(head)) == head
    for bad in ("12", "x:" + "ab" * 32, "0:" + "ab" * 32, "3:abc", "3:" + "AB" * 32):
        with pytest.raises(ValueError, match="chain head"):
            Head.parse(bad)

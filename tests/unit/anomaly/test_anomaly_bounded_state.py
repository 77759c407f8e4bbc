"""The per-participant checkpoint stays the same size however long a trial runs, and a
checkpoint in the older format still loads and scores the same (decision 0075)."""

from __future__ import annotations

import json
from typing import Any

from anomaly.domain import Scorer
from anomaly.state import FORMAT, RESTING_SLOTS
from anomaly_streams import fleet_day
from trialstream.studies import ScoringProfile

PARTICIPANTS = 3


def sizes(scorer: Scorer) -> list[int]:
    names = [f"P-{p + 1:05d}" for p in range(PARTICIPANTS)]
    snapshot = scorer.snapshot(names)
    return [len(json.dumps(snapshot[n], separators=(",", ":"))) for n in names]


def as_format_1(state: dict[str, Any]) -> dict[str, Any]:
    """A format-2 checkpoint written the way format 1 did: [hour, median] pairs."""
    old = json.loads(json.dumps(state)) | {"format": 1}
    resting = old.get("resting")
    if resting is not None:
        first = resting.pop("hours_from")
        hours = resting["hours"]
        resting["hours"] = [[first + i, m] for i, m in enumerate(hours) if m is not None]
    return old


def test_checkpoint_is_the_same_size_after_5_and_after_90_days() -> None:
    scorer = Scorer()
    by_day: dict[int, list[int]] = {}
    alerts = 0
    for day in range(90):
        alerts += len(scorer.score(fleet_day(PARTICIPANTS, day)))
        if day + 1 in (5, 30, 90):
            by_day[day + 1] = sizes(scorer)
    assert alerts > 0  # the stream exercises the rules, not only quiet days
    for day in (30, 90):
        for five, later in zip(by_day[5], by_day[day], strict=True):
            assert abs(later - five) <= 0.03 * five, (by_day, day)


def test_the_resting_baseline_is_checkpointed_as_a_week_of_hourly_slots() -> None:
    scorer = Scorer()
    for day in range(2):
        scorer.score(fleet_day(1, day))
    state = scorer.snapshot(["P-00001"])["P-00001"]
    assert state["format"] == FORMAT == 2
    hours = state["resting"]["hours"]
    assert len(hours) == RESTING_SLOTS
    assert hours[0] is None  # before the first reading: an empty slot, not a shorter list
    assert state["resting"]["hours_from"] + RESTING_SLOTS == state["resting"]["pending_hour"]


def test_a_format_1_checkpoint_loads_and_scores_as_the_scorer_that_wrote_it() -> None:
    names = [f"P-{p + 1:05d}" for p in range(PARTICIPANTS)]
    original = Scorer()
    for day in range(8):
        original.score(fleet_day(PARTICIPANTS, day))
    snapshot = original.snapshot(names)
    old, new = Scorer(), Scorer()
    old.restore({n: as_format_1(s) for n, s in snapshot.items()})
    new.restore(snapshot)
    assert old.snapshot(names) == snapshot  # read as format 1, written as format 2
    later = [fleet_day(PARTICIPANTS, day) for day in (8, 9)]
    expected = [a for batch in later for a in original.score(batch)]
    assert expected  # the days after the restore raise alerts to compare
    assert [a for batch in later for a in old.score(batch)] == expected
    assert [a for batch in later for a in new.score(batch)] == expected


def test_a_checkpoint_written_under_one_profile_scores_on_under_the_other() -> None:
    """A study may change its scoring_profile between versions (decision 0089): the
    checkpoint has one format, so its participants' learned state carries over."""
    from anomaly.config import ScoringConfig

    names = [f"P-{p + 1:05d}" for p in range(PARTICIPANTS)]
    for first, then in (("classic", "device-mix"), ("device-mix", "classic")):
        before = Scorer(ScoringConfig.of_profile(ScoringProfile(first)))
        for day in range(4):
            before.score(fleet_day(PARTICIPANTS, day))
        after = Scorer(ScoringConfig.of_profile(ScoringProfile(then)))
        after.restore(json.loads(json.dumps(before.snapshot(names))))
        fresh = Scorer(ScoringConfig.of_profile(ScoringProfile(then)))
        for scorer in (after, fresh):
            scorer.score(fleet_day(PARTICIPANTS, 4))

        def learned(scorer: Scorer) -> int:
            hours = scorer.snapshot(names)[names[0]]["resting"]["hours"]
            return sum(h is not None for h in hours)

        assert learned(after) > learned(fresh) > 0  # the days learned before came along

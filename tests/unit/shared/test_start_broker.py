"""A service's consumer groups join at the same time, not one after another."""

from __future__ import annotations

import asyncio

import pytest
from faststream.kafka import KafkaBroker
from trialstream.kafka import start_broker


async def _no_connection() -> None:
    return None


async def test_every_subscriber_starts_before_any_has_finished_joining(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = KafkaBroker("127.0.0.1:9")
    subscribers = [broker.subscriber(f"topic-{i}", group_id=f"group-{i}") for i in range(4)]
    # Each start returns only once all four have begun: one after another, it would hang.
    all_joining = asyncio.Barrier(len(subscribers))
    for subscriber in subscribers:
        monkeypatch.setattr(subscriber, "start", all_joining.wait)
    monkeypatch.setattr(broker, "connect", _no_connection)

    async with asyncio.timeout(5):
        await start_broker(broker)

    assert broker.running


async def test_a_subscriber_that_fails_to_start_fails_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = KafkaBroker("127.0.0.1:9")
    good, bad = (broker.subscriber(f"t-{i}", group_id=f"g-{i}") for i in range(2))

    async def refuse() -> None:
        raise ConnectionError("coordinator not available")

    monkeypatch.setattr(good, "start", _no_connection)
    monkeypatch.setattr(bad, "start", refuse)
    monkeypatch.setattr(broker, "connect", _no_connection)

    with pytest.raises(ConnectionError, match="coordinator not available"):
        await start_broker(broker)
    assert not broker.running

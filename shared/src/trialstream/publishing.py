"""Publish many records and wait for every broker ack, without one round trip each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from trialstream.events.base import Event
from trialstream.events.topics import Topic
from trialstream.producer import KeyedRecord

JSON_HEADERS = {"content-type": "application/json"}


async def publish_raw(broker: KafkaBroker, messages: Sequence[KeyedRecord]) -> None:
    """Send all, then await all acks (acks=all is set on the broker). Raises if any failed."""
    futures = [
        await broker.publish(
            m.payload,
            topic=m.topic,
            key=m.key.encode() if m.key is not None else None,
            headers=JSON_HEADERS,
            no_confirm=True,
        )
        for m in messages
    ]
    if futures:
        await asyncio.gather(*futures)


async def publish_events(
    broker: KafkaBroker, topic: Topic, events: Sequence[tuple[str | None, Event]]
) -> None:
    await publish_raw(
        broker,
        [KeyedRecord(str(topic), key, event.model_dump_json().encode()) for key, event in events],
    )

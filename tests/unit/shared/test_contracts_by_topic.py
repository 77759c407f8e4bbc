"""A group that reads several topics decodes each record by its topic's contract
(monitoring's risk-based streams are one such group)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from monitoring.subscribers import STREAMS, STREAMS_GROUP
from trialstream.consumer import BatchConsumer
from trialstream.events.base import Event
from trialstream.events.deadletter import DeadLetter
from trialstream.events.epro import QuestionnaireMissed
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic


def record(topic: str, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=b"P-1",
        value=value,
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=len(value),
        headers=(),
    )


async def _nothing(_: Sequence[object]) -> None:
    return None


def test_records_of_each_topic_become_their_own_event_type() -> None:
    consumer = BatchConsumer(
        model=Event,
        group=STREAMS_GROUP,
        handle=_nothing,
        send_dead_letters=_nothing,
        contracts=STREAMS,
    )
    enrolled = ParticipantState(participant_id="P-1", site_id="s1", status="withdrawn")
    t = datetime(2026, 3, 2, tzinfo=UTC)
    missed = QuestionnaireMissed(
        participant_id="P-1",
        occurrence_id=uuid.uuid4(),
        questionnaire_id="q",
        questionnaire_version=1,
        due_at=t,
        expires_at=t,
    )
    good, dead = consumer.decode(
        [
            record(Topic.PARTICIPANTS, enrolled.model_dump_json().encode()),
            record(Topic.EPRO_MISSED, missed.model_dump_json().encode()),
            record(Topic.EPRO_DUE, enrolled.model_dump_json().encode()),  # wrong contract
        ]
    )
    assert [type(e) for _, e in good] == [ParticipantState, QuestionnaireMissed]
    assert good[0][1] == enrolled
    assert [(d.source_topic, d.error_type) for d in dead] == [(Topic.EPRO_DUE, "ValidationError")]
    assert all(isinstance(d, DeadLetter) for d in dead)

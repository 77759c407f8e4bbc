"""No consumer group of any service stalls on a poison record (issue 16).

For every group each service declares, and every topic of that group: a good record, a
poison one (not JSON; then JSON of the wrong contract), and another good one, all on one
partition. The poison ones must reach the dead letters with the group and the reason,
the good ones must not, and the group must commit past all of them (it commits only
after processing), on a real broker and database.
"""

from __future__ import annotations

import importlib
import inspect
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from helpers import eventually, read_topic, serving, unique_id
from trialstream.events.alerts import AlertEpisodeEnded, AlertRaised, Severity
from trialstream.events.base import Event
from trialstream.events.consents import ConsentScope, ConsentState, ScopeConsent
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.erasures import ErasureDone, ErasureRequested, LegalBasis
from trialstream.events.monitoring import KriReading, KriThreshold, SiteKriSnapshot
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import ReadingReceived, ReadingsSummarised
from trialstream.events.retention_risk import RetentionRiskSummary
from trialstream.events.topics import Topic
from trialstream.events.visits import VisitChanged, VisitReminderDue, VisitStatus, VisitType
from trialstream.services import ServiceInfo, discover_services
from trialstream.settings import ServiceSettings

pytestmark = pytest.mark.integration
CONSUMERS = [s for s in discover_services() if s.groups]


def good(topic: Topic, pid: str) -> Event:
    """A valid event of the topic's contract about an enrolled participant."""
    now = datetime.now(UTC)
    soon = now + timedelta(hours=2)
    examples: dict[Topic, Event] = {
        Topic.PARTICIPANTS: ParticipantState(participant_id=pid, site_id="site-p"),
        Topic.READINGS: ReadingReceived(
            participant_id=pid,
            device_id="dev-p",
            metric="heart-rate",
            value=72,
            unit="beats/min",
            measured_at=now - timedelta(seconds=30),
        ),
        Topic.READING_SUMMARIES: ReadingsSummarised(
            participant_id=pid,
            readings=1,
            first_measured_at=now - timedelta(seconds=30),
            last_measured_at=now - timedelta(seconds=30),
            hours=[now.replace(minute=0, second=0, microsecond=0)],
            devices=["dev-p"],
        ),
        Topic.ALERTS: AlertRaised(
            participant_id=pid,
            metric="heart-rate",
            severity=Severity.LOW,
            rule="clinical-limit/heart-rate-high",
            detected_at=now,
            window_start=now - timedelta(minutes=5),
            window_end=now,
            observed=[112.0, 114.0],
            threshold=111.0,
            model_version="test",
            explanation="heart rate 112-114 for 5 min",
        ),
        Topic.ALERT_EPISODES_ENDED: AlertEpisodeEnded(
            participant_id=pid,
            kind="clinical",
            rule="clinical-limit/heart-rate-high",
            ended_at=now,
            explanation="back in range",
        ),
        Topic.EPRO_DUE: QuestionnaireDue(
            participant_id=pid,
            occurrence_id=uuid.uuid4(),
            questionnaire_id="daily-diary",
            questionnaire_version=1,
            due_at=now,
            expires_at=soon,
        ),
        Topic.EPRO_MISSED: QuestionnaireMissed(
            participant_id=pid,
            occurrence_id=uuid.uuid4(),
            questionnaire_id="daily-diary",
            questionnaire_version=1,
            due_at=now - timedelta(days=1),
            expires_at=now - timedelta(hours=20),
        ),
        Topic.EPRO_RESPONSES: ResponseSubmitted(
            participant_id=pid,
            response_id=uuid.uuid4(),
            questionnaire_id="daily-diary",
            questionnaire_version=1,
            submitted_at=now,
            on_time=True,
        ),
        Topic.VISITS: VisitChanged(
            participant_id=pid,
            site_id="site-p",
            visit_id=uuid.uuid4(),
            visit_name="week 1",
            visit_type=VisitType("video"),
            status=VisitStatus("scheduled"),
            window_start=now,
            window_end=soon + timedelta(days=2),
        ),
        Topic.VISIT_REMINDERS: VisitReminderDue(
            participant_id=pid,
            visit_id=uuid.uuid4(),
            booking_id=uuid.uuid4(),
            visit_name="week 1",
            visit_type=VisitType("video"),
            starts_at=soon,
            lead="24h",
        ),
        Topic.CONSENTS: ConsentState(
            participant_id=pid,
            site_id="site-p",
            revision=1,
            change="signed",
            scopes=(ScopeConsent(scope=ConsentScope.WEARABLE, since=now),),
        ),
        Topic.ERASURES: ErasureRequested(
            participant_id=pid,
            request_id=uuid.uuid4(),
            legal_basis=LegalBasis.CONSENT_WITHDRAWN,
            requested_by="staff",
            keep_collected_data=True,
        ),
        Topic.ERASURE_STATUS: ErasureDone(
            participant_id=pid, request_id=uuid.uuid4(), service="ingest"
        ),
        # per-site aggregates (no participant): the key is the only trace of `pid`
        Topic.KRI_SNAPSHOTS: SiteKriSnapshot(
            study_id="study-p",
            site_id="site-p",
            evaluated_at=now,
            window_days=7,
            participants=1,
            kris=(
                KriReading(
                    kri="wear_time",
                    label="Wear time",
                    value=90.0,
                    unit="%",
                    threshold=KriThreshold(amber=80.0, red=60.0, direction="below"),
                    status="green",
                ),
            ),
            open_alerts=0,
            open_flags=0,
            alerts_in_window=0,
            participant_days=7.0,
        ),
        Topic.RETENTION_RISK: RetentionRiskSummary(
            study_id="study-p",
            site_id="site-p",
            scored_at=now,
            model_version="test",
            participants_scored=1,
            high_risk=0,
            high_risk_cutoff=0.5,
            high_risk_share=0.0,
            mean_risk=0.1,
        ),
    }
    return examples[topic]


def settings_of(info: ServiceInfo, kafka: str, database_url: str) -> ServiceSettings:
    module = importlib.import_module(f"{info.module}.settings")
    [cls] = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, ServiceSettings) and c.__module__ == module.__name__
    ]
    return cls(  # type: ignore[no-any-return]
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token="poison-admin",
        kafka_session_timeout_ms=2000,
    )


async def committed(kafka: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    found = offsets.get(tp)
    return found.offset if found is not None else -1


@pytest.mark.parametrize("info", CONSUMERS, ids=lambda s: s.name)
async def test_a_poison_record_is_dead_lettered_and_never_stalls_a_group(
    info: ServiceInfo, kafka: str, database_url: str
) -> None:
    app = importlib.import_module(f"{info.module}.main").create_app(
        settings_of(info, kafka, database_url)
    )
    pid = unique_id("P")
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    async with serving(app):
        await producer.start()
        try:
            sent: dict[Topic, dict[str, Any]] = {}
            topics = list(dict.fromkeys(t for g in info.groups for t in g.topics))
            if Topic.PARTICIPANTS in topics:  # enrolled first, as in real life
                topics.remove(Topic.PARTICIPANTS)
                topics.insert(0, Topic.PARTICIPANTS)
            for topic in topics:
                key = pid.encode()
                records = [
                    good(topic, pid).model_dump_json().encode(),
                    b'{"not json',
                    json.dumps({"participant_id": pid, "unexpected": True}).encode(),
                    good(topic, pid).model_dump_json().encode(),
                ]
                meta = [await producer.send_and_wait(str(topic), r, key=key) for r in records]
                sent[topic] = {
                    "partition": meta[0].partition,
                    "good": {meta[0].offset, meta[3].offset},
                    "poison": {meta[1].offset, meta[2].offset},
                    "end": meta[3].offset + 1,
                }
        finally:
            await producer.stop()

        for group in info.groups:
            for topic in group.topics:
                tp = TopicPartition(str(topic), sent[topic]["partition"])

                async def past_all(
                    group_name: str = group.name,
                    tp: TopicPartition = tp,
                    end: int = sent[topic]["end"],
                ) -> bool:
                    return await committed(kafka, group_name, tp) >= end

                await eventually(past_all, timeout=30)
        groups = {g.name for g in info.groups}
        dead = await read_topic(
            kafka, Topic.DEAD_LETTER, match=lambda d: d.get("consumer_group") in groups, timeout=5
        )
        for group in info.groups:
            for topic in group.topics:
                where = sent[topic]
                offsets = {
                    d["offset"]
                    for d in dead
                    if (d["consumer_group"], d["source_topic"], d["partition"])
                    == (group.name, str(topic), where["partition"])
                }
                assert offsets == where["poison"], (group.name, topic, dead)
        assert all(d["reason"] for d in dead)

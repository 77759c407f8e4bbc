"""The event catalogue, generated from the code: an AsyncAPI 3.0 document of every topic,
the pydantic contracts it carries and the services that send and receive it, plus the
OpenAPI document of each HTTP service. `trialstream catalog` writes them under
docs/catalog/; a test keeps the checked-in copy current.

Our consumers decode records themselves (per record, with a dead-letter path) and publish
through the outbox, so FastStream's own AsyncAPI generator would see untyped subscribers
and no publishers; the contracts are declared here instead, next to the topics."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trialstream.events import (
    AlertAcknowledged,
    AlertEpisodeEnded,
    AlertEscalated,
    AlertRaised,
    AlertResolved,
    DeadLetter,
    Event,
    ParticipantState,
    QuestionnaireDue,
    QuestionnaireMissed,
    ReadingReceived,
    ResponseSubmitted,
    Topic,
    UrgentVisitProposed,
    VisitChanged,
    VisitReminderDue,
)
from trialstream.events.audit import AuditHeadPublished
from trialstream.events.consents import ConsentState
from trialstream.events.erasures import ErasureDone, ErasureRequested
from trialstream.events.identity import StaffAccessRevoked, StaffSessionEnded
from trialstream.events.monitoring import (
    DiscrepancyFlagRaised,
    KriBreached,
    KriRecovered,
    SiteKriSnapshot,
)
from trialstream.events.nudges import CoordinatorTaskCreated, NudgeSent
from trialstream.events.readings import ReadingsSummarised
from trialstream.events.retention_risk import RetentionRiskSummary
from trialstream.events.studies import StudyDefined
from trialstream.services import ServiceInfo

# What each topic carries. A topic missing here fails the catalogue test.
CONTRACTS: Mapping[Topic, tuple[type[Event], ...]] = MappingProxyType(
    {
        Topic.READINGS: (ReadingReceived,),
        Topic.READING_SUMMARIES: (ReadingsSummarised,),
        Topic.ALERTS: (AlertRaised,),
        Topic.ALERT_ACKNOWLEDGEMENTS: (AlertAcknowledged,),
        Topic.ALERT_EPISODES_ENDED: (AlertEpisodeEnded,),
        Topic.ALERT_RESOLUTIONS: (AlertResolved,),
        Topic.ALERT_ESCALATIONS: (AlertEscalated,),
        Topic.PARTICIPANTS: (ParticipantState,),
        Topic.DEAD_LETTER: (DeadLetter,),
        Topic.EPRO_DUE: (QuestionnaireDue,),
        Topic.EPRO_MISSED: (QuestionnaireMissed,),
        Topic.EPRO_RESPONSES: (ResponseSubmitted,),
        Topic.VISITS: (VisitChanged,),
        Topic.VISIT_REMINDERS: (VisitReminderDue,),
        Topic.VISIT_PROPOSALS: (UrgentVisitProposed,),
        Topic.NUDGES: (NudgeSent,),
        Topic.COORDINATOR_TASKS: (CoordinatorTaskCreated,),
        Topic.KRI_BREACHES: (KriBreached, KriRecovered),
        Topic.DISCREPANCY_FLAGS: (DiscrepancyFlagRaised,),
        Topic.KRI_SNAPSHOTS: (SiteKriSnapshot,),
        Topic.RETENTION_RISK: (RetentionRiskSummary,),
        Topic.AUDIT_HEADS: (AuditHeadPublished,),
        Topic.STAFF_ACCESS: (StaffSessionEnded, StaffAccessRevoked),
        Topic.STUDIES: (StudyDefined,),
        Topic.CONSENTS: (ConsentState,),
        Topic.ERASURES: (ErasureRequested,),
        Topic.ERASURE_STATUS: (ErasureDone,),
    }
)

_KEYS: Mapping[Topic, str] = MappingProxyType(
    {
        Topic.READING_SUMMARIES: "Keyed by participant_id. One per participant per upload,"
        " sent by ingest with the readings; for services that need only that data came.",
        Topic.DEAD_LETTER: "Records no consumer could decode or process, with the reason.",
        Topic.KRI_BREACHES: "Keyed by participant_id (site-level KRIs: by site_id).",
        Topic.KRI_SNAPSHOTS: "Keyed by <study_id>|<site_id>; compacted: a site's KRIs and open"
        " alerts and flags after monitoring's latest evaluation. Aggregates only.",
        Topic.RETENTION_RISK: "Keyed by <study_id>|<site_id>; compacted: a site's dropout risk"
        " after retention's latest scoring. Aggregates only.",
        Topic.AUDIT_HEADS: "Keyed by service; compacted. Every service sends its chain head.",
        Topic.STAFF_ACCESS: "Keyed by session:<id> or subject:<id>; compacted. Sent by the"
        " identity issuer; every service process reads all of it, without a consumer group.",
        Topic.STUDIES: "Keyed by study_id; compacted. Sent by the identity service; every"
        " service process reads all of it, without a consumer group.",
        Topic.CONSENTS: "Keyed by participant_id; compacted: the latest revision per"
        " participant is their consent. Sent by the consent service.",
        Topic.ERASURES: "Keyed by participant_id; compacted: the latest erasure request per"
        " participant. Sent by the consent service; every service holding personal data acts.",
        Topic.ERASURE_STATUS: "Keyed by <participant_id>|<service>; compacted: which service"
        " finished erasing whom. Read by the consent service.",
    }
)


def _channel_id(topic: Topic) -> str:
    return topic.name.lower()


def asyncapi(services: Sequence[ServiceInfo]) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in Topic:
        refs = {}
        for event in CONTRACTS[topic]:
            messages[event.__name__] = {
                "name": event.__name__,
                "title": event.__name__,
                "summary": (event.__doc__ or "").strip().split("\n\n")[0],
                "contentType": "application/json",
                "payload": event.model_json_schema(),
            }
            refs[event.__name__] = {"$ref": f"#/components/messages/{event.__name__}"}
        channels[_channel_id(topic)] = {
            "address": str(topic),
            "description": _KEYS.get(topic, "Keyed by participant_id."),
            "messages": refs,
        }
    operations: dict[str, Any] = {}
    for info in services:
        sends = (*info.produces, Topic.AUDIT_HEADS)  # every service: its audit chain's head
        for action, topics in (("send", sends), ("receive", info.consumes)):
            for topic in topics:
                operations[f"{info.name}.{action}.{_channel_id(topic)}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{_channel_id(topic)}"},
                    "tags": [{"name": info.name}],
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "trialstream events",
            "version": "1",
            "description": "Every topic, its contracts, and which service sends or receives it.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def openapi(info: ServiceInfo) -> dict[str, Any] | None:
    """The service's OpenAPI document (building its app connects to nothing)."""
    main = importlib.import_module(f"{info.module}.main")
    create_app = getattr(main, "create_app", None)
    if create_app is None:
        return None
    document: dict[str, Any] = create_app().openapi()
    return document


def documents(services: Sequence[ServiceInfo]) -> dict[str, str]:
    """File name -> JSON text, stable (sorted keys), for everything the catalogue holds."""
    out = {"asyncapi.json": _dump(asyncapi(services))}
    for info in services:
        document = openapi(info)
        if document is not None:
            out[f"openapi-{info.name}.json"] = _dump(document)
    return out


def write(folder: Path, services: Sequence[ServiceInfo]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents(services).items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

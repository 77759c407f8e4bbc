"""Wearable readings, named after IEEE 1752.1 / Open mHealth schemas and units."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from trialstream.events.base import DEFAULT_STUDY, DeviceId, Event, ParticipantId, StudyId


class Metric(StrEnum):
    HEART_RATE = "heart-rate"
    OXYGEN_SATURATION = "oxygen-saturation"
    BODY_TEMPERATURE = "body-temperature"
    RESPIRATORY_RATE = "respiratory-rate"
    STEP_COUNT = "step-count"


# Open mHealth unit strings, exactly; the topic always carries these.
UNITS: dict[Metric, str] = {
    Metric.HEART_RATE: "beats/min",
    Metric.OXYGEN_SATURATION: "%",
    Metric.BODY_TEMPERATURE: "C",
    Metric.RESPIRATORY_RATE: "breaths/min",
    Metric.STEP_COUNT: "steps",
}


class ReadingReceived(Event):
    """One measurement accepted by ingest. `occurred_at` is when ingest received it.
    `study_id` is the participant's study, stamped by ingest from the enrolment (added
    within version 1: a record written before it was there belongs to the default study),
    so the scorer applies the study's alert limits without a lookup per reading."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY
    device_id: DeviceId
    metric: Metric
    value: float
    unit: str
    measured_at: AwareDatetime


class ReadingsSummarised(Event):
    """What one upload added for one participant, in a few fields: how many readings, the
    span they were measured in and the UTC hours that have data (decision 0092). Ingest
    sends it with the readings, in the same acknowledged send, so a summary exists exactly
    where its readings do. For services that need to know *that* data arrived, not each
    value (retention's silence and wear tracking): they read one record per upload instead
    of one per reading. `event_id` is derived from the readings' ids, so an upload retried
    with the same readings gives the same summary; everything a consumer does with it is
    idempotent (hours are a set, the last time a maximum)."""

    schema_version: Literal[1] = 1
    participant_id: ParticipantId
    study_id: StudyId = DEFAULT_STUDY
    readings: int = Field(ge=1, description="readings in this summary (new ones only)")
    first_measured_at: AwareDatetime
    last_measured_at: AwareDatetime
    hours: list[AwareDatetime] = Field(
        min_length=1, description="start of every UTC hour with at least one reading, sorted"
    )
    devices: list[DeviceId] = Field(min_length=1, description="the devices, sorted")

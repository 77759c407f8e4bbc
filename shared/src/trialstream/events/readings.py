"""Wearable readings, named after IEEE 1752.1 / Open mHealth schemas and units."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime

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

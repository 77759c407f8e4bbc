"""Wearable readings, named after IEEE 1752.1 / Open mHealth schemas and units."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

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


class Rollups(BaseModel):
    """One participant's readings per metric and 5-minute UTC bucket, as columns (row i is
    `metric[i]`, `bucket[i]`, ...; sorted by metric, then bucket): additive (n and sum, not
    the mean), so the buckets of several uploads fold into one. Columns, not one object per
    bucket: a sparse device fills a bucket per reading, and a column of numbers costs a
    fraction of an object to build and decode."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    metric: list[Metric] = Field(default_factory=list)
    bucket: list[AwareDatetime] = Field(
        default_factory=list, description="start of each 5-minute UTC bucket"
    )
    n: list[int] = Field(default_factory=list)
    sum: list[float] = Field(default_factory=list)
    min: list[float] = Field(default_factory=list)
    max: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _columns_align(self) -> Rollups:
        lengths = {len(c) for c in (self.metric, self.bucket, self.n, self.sum, self.min, self.max)}
        if len(lengths) > 1:
            raise ValueError("rollup columns must all have the same length")
        if any(n < 1 for n in self.n):
            raise ValueError("a rollup holds at least one reading")
        return self


class SteepChange(BaseModel):
    """A change between two consecutive readings of one device and metric steeper than the
    floor `trialstream.reading_summaries.STEEP_CHANGES` sets for that metric."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    at: AwareDatetime = Field(description="measured time of the reading after the change")
    delta: float
    seconds: float = Field(gt=0, description="time since the reading before")


class DeviceSeries(BaseModel):
    """One device's readings of one metric in an upload: the first and the last (so a
    consumer can compare them with its neighbouring uploads) and the steep changes between
    consecutive readings within the upload."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    device_id: DeviceId
    metric: Metric
    first_at: AwareDatetime
    first_value: float
    last_at: AwareDatetime
    last_value: float
    steep: list[SteepChange] = Field(default_factory=list)


class ReadingsSummarised(Event):
    """What one upload added for one participant, in a few fields: how many readings, the
    span they were measured in and the UTC hours that have data (decision 0092). Ingest
    sends it with the readings, in the same acknowledged send, so a summary exists exactly
    where its readings do. For services that need to know *that* data arrived, not each
    value (retention's silence and wear tracking): they read one record per upload instead
    of one per reading: retention's silence and wear tracking, and (decision 0093, with the
    rollups and device series) monitoring's timeline and discrepancy flags. `event_id` is
    derived from the readings' ids, so an upload retried with the same readings gives the
    same summary: a consumer that adds (rollups) drops a summary id it has seen; hours, the
    last time and the series' ends are idempotent anyway."""

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
    # added within version 1 (decision 0093): a summary written before has neither
    rollups: Rollups = Field(default_factory=Rollups)
    series: list[DeviceSeries] = Field(
        default_factory=list, description="per device and metric, sorted"
    )

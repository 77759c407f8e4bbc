"""Per-record validation of device readings: one set of rules for ingest and for replay.

A record that fails gets a RecordRejected with the field, a machine-readable code
and a sentence; the caller keeps the rest of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, TypeAdapter, ValidationError

from trialstream.events.base import DEFAULT_STUDY, DeviceId, ParticipantId, StudyId
from trialstream.events.readings import UNITS, Metric, ReadingReceived

# Outside these a value is not a measurement of a living participant but a device
# or transmission fault. Wider than any alerting limit on purpose: a reading of
# 35 breaths/min is alarming, not impossible.
PLAUSIBLE_RANGE: dict[Metric, tuple[float, float]] = {
    Metric.HEART_RATE: (20.0, 300.0),
    Metric.OXYGEN_SATURATION: (50.0, 100.0),
    Metric.BODY_TEMPERATURE: (25.0, 45.0),
    Metric.RESPIRATORY_RATE: (2.0, 80.0),
    Metric.STEP_COUNT: (0.0, 100_000.0),
}

FAHRENHEIT = "F"


class ReadingUpload(BaseModel):
    """A reading exactly as a device sends it (the contract in ARCHITECTURE.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    event_id: UUID
    participant_id: ParticipantId
    device_id: DeviceId
    metric: Metric
    value: float
    unit: str
    measured_at: AwareDatetime


class UploadBody(BaseModel):
    """A whole upload `{"readings": [...]}` in which every record is valid: the fast path.

    One `model_validate_json` call parses and checks the whole body in pydantic-core,
    about three times cheaper than `json.loads` then one validation per record. Any error
    means "take the per-record path", which gives each record its own verdict.
    """

    readings: list[ReadingUpload]


def parse_valid_body(body: bytes) -> list[ReadingUpload] | None:
    """Every record of the body, validated; None if the body or any record is invalid."""
    try:
        return UploadBody.model_validate_json(body).readings
    except ValidationError:
        return None


_AWARE_DATETIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_STUDY_ID: TypeAdapter[str] = TypeAdapter(StudyId)


def received_json(
    uploads: list[ReadingUpload], received_at: datetime, study_id: str = DEFAULT_STUDY
) -> list[bytes]:
    """The `ReadingReceived` JSON of checked uploads (all of one participant's study),
    without building the events.

    A `ReadingReceived` is the upload plus `occurred_at` (when ingest received it),
    `schema_version` and `study_id`, and an upload serialises its fields exactly as the
    event does, so the event is the upload's JSON with those fields put first. Building
    2,000 models per request only to serialise them cost more than validating the request;
    a unit test holds the bytes equal to the model's own.
    """
    head = b'{"occurred_at":%s,"schema_version":1,"study_id":%s,' % (
        _AWARE_DATETIME.dump_json(received_at),
        _STUDY_ID.dump_json(study_id),
    )
    return [head + upload.__pydantic_serializer__.to_json(upload)[1:] for upload in uploads]


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class RecordRejected(Exception):
    """One record is invalid; `errors` says which fields and why."""

    def __init__(self, *errors: FieldError) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, field: str, code: str, message: str) -> RecordRejected:
        return cls(FieldError(field, code, message))

    def as_dicts(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


def _field_errors(exc: ValidationError) -> RecordRejected:
    return RecordRejected(
        *(
            FieldError(".".join(str(p) for p in err["loc"]) or "(record)", err["type"], err["msg"])
            for err in exc.errors(include_url=False)
        )
    )


def parse_upload(raw: object) -> ReadingUpload:
    """Shape check of one record (a dict from JSON). Raises RecordRejected."""
    try:
        return ReadingUpload.model_validate(raw)
    except ValidationError as exc:
        raise _field_errors(exc) from None


def normalise(
    upload: ReadingUpload,
    *,
    received_at: datetime,
    max_clock_skew: timedelta,
    study_id: str = DEFAULT_STUDY,
) -> ReadingReceived:
    """Unit and range checks; Fahrenheit temperatures become Celsius. Raises RecordRejected."""
    checked = check(upload, received_at=received_at, max_clock_skew=max_clock_skew)
    return ReadingReceived(
        event_id=checked.event_id,
        occurred_at=received_at,
        participant_id=checked.participant_id,
        study_id=study_id,
        device_id=checked.device_id,
        metric=checked.metric,
        value=checked.value,
        unit=checked.unit,
        measured_at=checked.measured_at,
    )


def check(
    upload: ReadingUpload, *, received_at: datetime, max_clock_skew: timedelta
) -> ReadingUpload:
    """The rules of `normalise` without building the event: the upload itself, or a copy
    in Celsius for a Fahrenheit temperature. Raises RecordRejected."""
    expected = UNITS[upload.metric]
    value = upload.value
    unit = upload.unit
    if upload.metric is Metric.BODY_TEMPERATURE and unit == FAHRENHEIT:
        value, unit = round((value - 32.0) * 5.0 / 9.0, 3), expected
    if unit != expected:
        accepted = f"'{expected}'" + (" or 'F'" if upload.metric is Metric.BODY_TEMPERATURE else "")
        raise RecordRejected.one(
            "unit", "wrong_unit", f"{upload.metric} must be in {accepted}, got '{upload.unit}'"
        )
    low, high = PLAUSIBLE_RANGE[upload.metric]
    if not low <= value <= high:
        raise RecordRejected.one(
            "value",
            "implausible_value",
            f"{upload.metric} of {upload.value} {upload.unit} is outside the physiologically "
            f"possible range {low:g}-{high:g} {expected}",
        )
    if upload.metric is Metric.STEP_COUNT and value != int(value):
        raise RecordRejected.one("value", "not_whole_steps", "step-count must be a whole number")
    if upload.measured_at > received_at + max_clock_skew:
        raise RecordRejected.one(
            "measured_at",
            "in_future",
            f"measured_at is {(upload.measured_at - received_at).total_seconds():.0f} s ahead of "
            f"the server clock; at most {max_clock_skew.total_seconds():.0f} s of clock skew is allowed",
        )
    if unit is upload.unit and value is upload.value:
        return upload
    return upload.model_copy(update={"value": value, "unit": unit})

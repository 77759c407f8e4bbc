"""A study, declared in one versioned file (issue 15): its sites, the modules it uses, its
visit schedule, questionnaire schedules, alert limits within safe bounds, KRI tolerance
limits and retention rules. `trialstream study apply study.yaml` sends it to the identity
service (the platform's directory of people and studies), which versions and audits every
change and announces it on the compacted `studies` topic; every service reads its part
from there (`StudyRegistry`), never from another service's database.

The study `default` needs no file: it is the study every record belonged to before studies
were first-class, with every module and any site (decision 0072).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    model_serializer,
    model_validator,
)

from trialstream.eligibility import Eligibility, EnrollmentPlan, plan_problems
from trialstream.events.base import LanguageTag, SiteId, StudyId, Timezone
from trialstream.events.participants import ParticipantState
from trialstream.events.visits import VisitType
from trialstream.identity import DEFAULT_STUDY
from trialstream.transient import TransientConflict

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Module(StrEnum):
    """What a study can switch on; a module it has not enabled refuses its routes for the
    study (409 `module_not_enabled`) and skips its events."""

    INGEST = "ingest"  # wearable uploads (and the archive)
    ANOMALY = "anomaly"  # scoring the readings into alerts
    MONITORING = "monitoring"  # the staff inbox, KRIs, flags
    EPRO = "epro"
    TELEHEALTH = "telehealth"
    RETENTION = "retention"
    CONSENT = "consent"


# Alert limits a study may move, and how far: a study of athletes may raise the resting
# heart-rate limit, one of heart-failure patients lower the SpO2 one, but never beyond
# what is still a safe trigger for a clinical look. The alert rule's alerting threshold
# (its mildest band) moves; the anomaly service reads these bounds from here.
SAFE_LIMITS: Mapping[str, tuple[float, float]] = {
    "heart-rate-high": (100.0, 150.0),  # beats/min at rest
    "heart-rate-low": (30.0, 50.0),
    "oxygen-saturation-low": (85.0, 94.0),  # %
    "body-temperature-high": (37.5, 39.0),  # C
    "body-temperature-low": (34.0, 36.0),
    "respiratory-rate-high": (20.0, 30.0),  # breaths/min
    "respiratory-rate-low": (6.0, 10.0),
}
AlertRuleName = Literal[
    "heart-rate-high",
    "heart-rate-low",
    "oxygen-saturation-low",
    "body-temperature-high",
    "body-temperature-low",
    "respiratory-rate-high",
    "respiratory-rate-low",
]

# The KRIs a study may set tolerance limits for, in the units the monitoring service
# reports them, and which way is worse ("below": a lower value is worse).
KRI_UNITS: Mapping[str, tuple[str, Literal["above", "below"]]] = {
    "wear_time": ("% of waking slots with data", "below"),
    "epro_on_time": ("% of ePRO due answered on time", "below"),
    "visit_window": ("% of visits done in their window", "below"),
    "ack_median": ("minutes to acknowledge an alert", "above"),
    "dq_flag_rate": ("data-quality flags per participant-day", "above"),
}


class ScoringProfile(StrEnum):
    """How the anomaly service judges a study's readings (`scoring_profile` in the study
    file; decision 0089). device-mix (the default): trial definitions as limits, persistence
    in time scaled to each device's cadence, exertion inferred without steps, irregular
    rhythm, small resting shifts. classic: NEWS2 bands, persistence in reading counts,
    tuned for one-reading-a-minute watches that send steps."""

    DEVICE_MIX = "device-mix"
    CLASSIC = "classic"


KriName = Literal["wear_time", "epro_on_time", "visit_window", "ack_median", "dq_flag_rate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudySite(_Strict):
    id: SiteId
    name: Name | None = None
    timezone: Timezone
    languages: list[LanguageTag] = Field(default_factory=lambda: ["en"], min_length=1)


class StudyVisit(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    day: int = Field(ge=1, le=3650, description="Study day; Day 1 is the baseline date")
    minus_days: int = Field(default=0, ge=0, le=365)
    plus_days: int = Field(default=0, ge=0, le=365)
    type: VisitType = VisitType.VIDEO


class QuestionnaireSchedule(_Strict):
    schedule_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    questionnaire_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    questionnaire_version: int = Field(ge=1)
    # The rule's own shape is ePRO's (daily, weekly, after_enrollment, after_visit, random);
    # ePRO checks it when it reads the study and skips (and lists) a schedule that does not
    # fit or whose questionnaire version is not published.
    rule: dict[str, Any]

    @model_validator(mode="after")
    def _known_kind(self) -> QuestionnaireSchedule:
        kinds = {"daily", "weekly", "after_enrollment", "after_visit", "random"}
        if self.rule.get("kind") not in kinds:
            raise ValueError(f"rule.kind must be one of {sorted(kinds)}")
        return self


class AlertLimit(_Strict):
    rule: AlertRuleName
    value: float

    @model_validator(mode="after")
    def _within_safe_bounds(self) -> AlertLimit:
        low, high = SAFE_LIMITS[self.rule]
        if not low <= self.value <= high:
            raise ValueError(
                f"{self.rule} may be set between {low:g} and {high:g}, not {self.value:g}"
            )
        return self


class KriLimit(_Strict):
    """A KRI's tolerance limits in its own unit (KRI_UNITS): percentages as 0-100."""

    kri: KriName
    amber: float = Field(ge=0)
    red: float = Field(ge=0)

    @model_validator(mode="after")
    def _red_is_worse(self) -> KriLimit:
        unit, worse = KRI_UNITS[self.kri]
        if unit.startswith("%") and max(self.amber, self.red) > 100:
            raise ValueError(f"{self.kri} is a percentage (0-100)")
        if self.red != self.amber and (self.red < self.amber) != (worse == "below"):
            raise ValueError(
                f"{self.kri}: red must be worse than amber ({worse} is worse, in {unit})"
            )
        return self


class RetentionRules(_Strict):
    languages: list[LanguageTag] = Field(default_factory=lambda: ["en"], min_length=1)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    max_per_day: int = Field(default=3, ge=0, le=50)


class ErasureRules(_Strict):
    """What an erasure keeps (GDPR Art. 17(3)(c)/(d), decision 0086): with
    `keep_collected_data`, data collected under consent for the trial (readings, scores,
    coded answers, visit times) stays, pseudonymous, for `regulatory_years`; identifying
    data (free text, contact addresses, notes, feeds, names) goes either way."""

    keep_collected_data: bool = True
    regulatory_years: int = Field(default=25, ge=1, le=100)


class ConsentRules(_Strict):
    """What the consent module does beyond gating by scope (decision 0088): once a
    re-consent deadline has passed without the new signature, `continue` collects under the
    earlier consent (the default, as before), `pause` collects nothing measured after the
    deadline day (UTC) until the participant signs."""

    after_reconsent_deadline: Literal["continue", "pause"] = "continue"


class StudyDefinition(_Strict):
    """One study, as its file declares it. Unknown keys are refused (a typo is an error,
    not a silently ignored setting)."""

    study_id: StudyId
    title: Name
    sponsor: Name
    sites: list[StudySite] = Field(min_length=1, max_length=1000)
    modules: list[Module] = Field(min_length=1)
    visits: list[StudyVisit] = Field(default_factory=list, max_length=200)
    questionnaires: list[QuestionnaireSchedule] = Field(default_factory=list, max_length=200)
    alert_limits: list[AlertLimit] = Field(default_factory=list)
    # Optional (decision 0089): absent scores with the platform's default profile and keeps
    # the digest of study files written before it existed.
    scoring_profile: ScoringProfile | None = Field(default=None, exclude_if=lambda v: v is None)
    kri_limits: list[KriLimit] = Field(default_factory=list)
    retention: RetentionRules = Field(default_factory=RetentionRules)
    # Optional (issue 19, decision 0082): pre-screening criteria and the enrollment target.
    # Left out of every dump when unset, so older definitions keep their digest and diff.
    eligibility: Eligibility | None = Field(default=None, exclude_if=lambda v: v is None)
    enrollment: EnrollmentPlan | None = Field(default=None, exclude_if=lambda v: v is None)
    # Optional: absent keeps collected data (the regulatory default) and the digest of
    # study files written before it existed.
    erasure: ErasureRules | None = None
    # Optional (decision 0088): absent keeps today's behaviour and older files' digests.
    consent: ConsentRules | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _plan_names_own_sites(self) -> StudyDefinition:
        if self.enrollment is not None:
            problems = plan_problems(self.enrollment, {s.id for s in self.sites})
            if problems:
                raise ValueError("enrollment: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _consistent(self) -> StudyDefinition:
        for what, ids in (
            ("site id", [s.id for s in self.sites]),
            ("module", [str(m) for m in self.modules]),
            ("visit name", [v.name for v in self.visits]),
            ("schedule_id", [q.schedule_id for q in self.questionnaires]),
            ("alert limit rule", [str(a.rule) for a in self.alert_limits]),
            ("kri", [str(k.kri) for k in self.kri_limits]),
        ):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"each {what} may appear once; repeated: {', '.join(twice)}")
        if self.study_id == DEFAULT_STUDY:
            raise ValueError(f"'{DEFAULT_STUDY}' is the implicit study of existing data")
        return self

    @model_serializer(mode="wrap")
    def _without_absent_erasure(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A file without the optional `erasure` block dumps (and hashes, and diffs) as
        before it existed."""
        document: dict[str, Any] = handler(self)
        if document.get("erasure", ...) is None:
            del document["erasure"]
        return document

    def enables(self, module: Module) -> bool:
        return module in self.modules

    def site(self, site_id: str) -> StudySite | None:
        return next((s for s in self.sites if s.id == site_id), None)

    def canonical(self) -> str:
        """The definition as sorted, compact JSON: what is hashed and compared."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def erasure_rules(self) -> ErasureRules:
        return self.erasure or ErasureRules()

    def consent_rules(self) -> ConsentRules:
        return self.consent or ConsentRules()

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()


class StudyFileError(ValueError):
    """A study file that cannot be used, with one line per problem (`path: message`)."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.problems = problems


def field_problems(exc: ValidationError) -> list[str]:
    """Each validation error as `sites[1].timezone: message`."""
    out = []
    for error in exc.errors(include_url=False):
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        ).lstrip(".")
        out.append(f"{where or '(file)'}: {error['msg']}")
    return out


def load_study(path: Path) -> StudyDefinition:
    """A study file (YAML or JSON), validated; `StudyFileError` names every problem."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StudyFileError(path, [f"cannot be read: {exc}"]) from None
    if not isinstance(document, dict):
        raise StudyFileError(path, ["the file must hold one mapping (study_id: ..., sites: ...)"])
    try:
        return StudyDefinition.model_validate(document)
    except ValidationError as exc:
        raise StudyFileError(path, field_problems(exc)) from None


class StudyNotKnownYet(TransientConflict):
    """A record names a study this process has not read from the studies topic yet (the
    two topics are read independently): retried until it has."""


class UnknownStudy(ValueError):
    """A record names a study that has not been announced within the grace period: not
    transient, so the consumer dead-letters that record (with this reason) and goes on
    with the others, instead of one bad enrolment stalling a service."""


# How long a record may wait for its study to be announced before it is dead-lettered.
UNKNOWN_STUDY_GRACE = timedelta(minutes=2)


E = TypeVar("E", bound=ParticipantState)


class StudyRegistry:
    """The studies as the `studies` topic has announced them, in one service process."""

    def __init__(self) -> None:
        self._studies: dict[str, tuple[int, StudyDefinition]] = {}
        # Set once every study on the topic when the process started has been read: before
        # that, a study missing here may simply not have been read yet.
        self.caught_up = False

    def apply(self, version: int, definition: StudyDefinition) -> None:
        current = self._studies.get(definition.study_id)
        if current is None or current[0] < version:
            self._studies[definition.study_id] = (version, definition)

    def get(self, study_id: str) -> StudyDefinition | None:
        found = self._studies.get(study_id)
        return None if found is None else found[1]

    def definitions(self) -> list[StudyDefinition]:
        """Every study announced so far (their latest versions), by id."""
        return [d for _, (_, d) in sorted(self._studies.items())]

    def known(self, study_id: str) -> bool:
        return study_id == DEFAULT_STUDY or study_id in self._studies

    def enables(self, study_id: str, module: Module) -> bool:
        """The implicit default study has every module; an unknown study none."""
        if study_id == DEFAULT_STUDY:
            return True
        study = self.get(study_id)
        return study is not None and study.enables(module)

    def of_module(
        self, events: Sequence[E], module: Module, now: datetime | None = None
    ) -> list[E]:
        """The participants' records of studies that use `module`; the others are skipped
        (the module does nothing for those studies). A record of a study not read yet
        raises `StudyNotKnownYet` (the batch is retried, not skipped wrongly) until the
        registry has caught up with the topic and for `UNKNOWN_STUDY_GRACE` after the
        record was published, then `UnknownStudy` (dead-lettered)."""
        unknown = [e for e in events if not self.known(e.study_id)]
        if unknown:
            names = ", ".join(sorted({e.study_id for e in unknown}))
            if self.given_up_on(min(e.occurred_at for e in unknown), now):
                raise UnknownStudy(f"no study {names} was announced on the studies topic")
            raise StudyNotKnownYet(f"studies not known here yet: {names}")
        return [e for e in events if self.enables(e.study_id, module)]

    def given_up_on(self, published: datetime, now: datetime | None = None) -> bool:
        """Whether a record published at `published` that names a study not known here
        has waited long enough: the registry has read the whole topic and the studies
        topic had `UNKNOWN_STUDY_GRACE` to announce it (the two topics are independent)."""
        return self.caught_up and (now or datetime.now(UTC)) - published > UNKNOWN_STUDY_GRACE

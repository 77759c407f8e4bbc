"""Each study's scoring: the profile its study file chooses (`scoring_profile`; the
platform's configuration when it does not) with the study's alert limits (`alert_limits`,
within `trialstream.studies.SAFE_LIMITS`), read from the studies topic. Readings carry
their participant's study (stamped by ingest), so a batch is split by study and each part
scored with its study's configuration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import structlog
from trialstream.events.base import DEFAULT_STUDY
from trialstream.events.readings import ReadingReceived
from trialstream.studies import Module, ScoringProfile, StudyNotKnownYet, StudyRegistry

from anomaly.config import ScoringConfig, UnsafeLimitError

log = structlog.get_logger(__name__)


class StudyScoring:
    """The configuration of each study, built once per study version."""

    def __init__(self, base: ScoringConfig, studies: StudyRegistry) -> None:
        self.base = base
        self.studies = studies
        self._built: dict[str, tuple[str, ScoringConfig]] = {}

    def config_for(self, study_id: str) -> ScoringConfig | None:
        """The study's configuration; None if the study does not use anomaly scoring.
        Raises StudyNotKnownYet for a study this process has not read yet."""
        if study_id == DEFAULT_STUDY:
            return self.base
        study = self.studies.get(study_id)
        if study is None:
            raise StudyNotKnownYet(f"study {study_id} not read from the studies topic yet")
        if not study.enables(Module.ANOMALY):
            return None
        digest = study.digest()
        built = self._built.get(study_id)
        if built is not None and built[0] == digest:
            return built[1]
        limits = {f"clinical-limit/{a.rule}": a.value for a in study.alert_limits}
        config = self._build(study_id, self._profile(study.scoring_profile), limits)
        self._built[study_id] = (digest, config)
        return config

    def _profile(self, chosen: ScoringProfile | None) -> ScoringConfig:
        """The platform's configuration, or the profile the study chose when it differs
        (the platform's keeps any settings the service was started with)."""
        if chosen is None or chosen is self.base.profile:
            return self.base
        return ScoringConfig.of_profile(chosen)

    def _build(
        self, study_id: str, profile: ScoringConfig, limits: dict[str, float]
    ) -> ScoringConfig:
        if not limits:
            return profile
        try:
            config = profile.for_study(limits)
        except UnsafeLimitError as exc:
            # The study file is checked against the same bounds, so only a profile without
            # one of the named rules gets here: score with the profile's limits, loudly.
            log.error("study alert limits not applied", study_id=study_id, reason=str(exc))
            return profile
        # Alerts say which profile and limits judged them: the profile's version and the study's.
        return replace(config, model_version=f"{profile.model_version}+{study_id}")

    def by_config(
        self, readings: Sequence[ReadingReceived]
    ) -> list[tuple[ScoringConfig, list[ReadingReceived]]]:
        """The batch split by study (arrival order kept within each part); readings of
        studies that do not use anomaly scoring are left out."""
        parts: dict[str, list[ReadingReceived]] = {}
        for reading in readings:
            parts.setdefault(reading.study_id, []).append(reading)
        out = []
        for study_id, part in parts.items():
            try:
                config = self.config_for(study_id)
            except StudyNotKnownYet:
                if not self.studies.given_up_on(min(r.occurred_at for r in part)):
                    raise  # the batch is retried once the studies topic has been read
                # Ingest enrols only into announced studies, so this is a study whose
                # definition is gone: never drop readings, score with the platform's limits.
                log.error(
                    "readings of an unknown study scored with the platform's limits",
                    study_id=study_id,
                    readings=len(part),
                )
                config = self.base
            if config is not None:
                out.append((config, part))
        return out

"""Which KRI thresholds are in force for a study: the service's settings (MONITORING_KRI_*),
with the study file's `kri_limits` replacing the KRIs it names. Pure: the studies come
from the process's `StudyRegistry` (the studies topic), never from another database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from trialstream.identity import DEFAULT_STUDY
from trialstream.studies import KriLimit, Module, StudyDefinition, StudyRegistry

from monitoring.rbm.kri import KRIS, KriConfig, Threshold


def with_study_limits(base: KriConfig, limits: Sequence[KriLimit]) -> KriConfig:
    """`base` with each named KRI's amber and red replaced; direction stays the KRI's own
    (the study file already refuses a red that is not worse than its amber)."""
    if not limits:
        return base
    thresholds = dict(base.thresholds)
    for limit in limits:
        thresholds[limit.kri] = Threshold(limit.amber, limit.red, KRIS[limit.kri].direction)
    return replace(base, thresholds=thresholds, from_study=frozenset(limit.kri for limit in limits))


def config_for(base: KriConfig, study: StudyDefinition | None) -> KriConfig:
    """The thresholds to show for a study. None (the default study, which has no file, or a
    study this process has not read from the studies topic yet): the settings' thresholds,
    which the answer marks as such (`source: settings`)."""
    return base if study is None else with_study_limits(base, study.kri_limits)


def configs_to_evaluate(
    base: KriConfig, study_ids: Iterable[str], studies: StudyRegistry
) -> dict[str, KriConfig]:
    """The studies the periodic evaluation judges, each with its thresholds. Left out:
    studies that do not use monitoring, and studies not announced to this process yet.
    The latter are not judged against the settings' thresholds meanwhile: a breach event
    cannot be taken back, and right after start-up (the first pass runs at once) that
    would publish breaches the study's own limits may not have; the next pass, once the
    studies topic has been read, judges them."""
    out: dict[str, KriConfig] = {}
    for study_id in study_ids:
        if study_id == DEFAULT_STUDY:
            out[study_id] = base  # no study file: today's settings, as before studies
        elif studies.enables(study_id, Module.MONITORING):
            out[study_id] = config_for(base, studies.get(study_id))
    return out

"""Which schedules each participant gets: the protocol file's in the default study, their
study's (`StudyDefinition.questionnaires`) in a declared one; and a new study version's
added schedules for the study's existing participants (`assign_study_versions`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import asyncpg
import structlog
from prometheus_client import Gauge
from trialstream import audit
from trialstream.db import DbConnection
from trialstream.identity import DEFAULT_STUDY
from trialstream.studies import Module, StudyRegistry

from epro import repository
from epro.domain.definitions import Catalog
from epro.domain.schedules import Schedule
from epro.domain.study_schedules import StudySchedules, study_schedules

log = structlog.get_logger(__name__)
# For an operator's alert: a study file names schedules its participants are not getting.
SKIPPED = Gauge(
    "epro_study_schedules_skipped",
    "Schedules of the study's file that ePRO skips (rule does not fit, questionnaire not published)",
    ["study_id"],
)


class ScheduleSource:
    """The schedules of each study, read from the studies topic (`runtime.studies`) and
    checked against the questionnaires published here; worked out once per study version
    (again while a skipped schedule waits for its questionnaire to be published)."""

    def __init__(
        self, protocol: Sequence[Schedule], studies: StudyRegistry, catalog: Catalog
    ) -> None:
        self._protocol = StudySchedules(tuple(protocol))
        self._studies = studies
        self._catalog = catalog
        self._known: dict[str, tuple[str, StudySchedules]] = {}  # study -> (digest, schedules)

    async def of(self, pool: asyncpg.Pool, study_id: str) -> StudySchedules | None:
        """None: the study is not announced here (yet), or does not use ePRO."""
        if study_id == DEFAULT_STUDY:
            return self._protocol
        study = self._studies.get(study_id)
        if study is None or not study.enables(Module.EPRO):
            return None
        digest = study.digest()
        known = self._known.get(study_id)
        if known is not None and known[0] == digest and not known[1].waits_for_a_questionnaire():
            return known[1]
        if any(
            self._catalog.get(q.questionnaire_id, q.questionnaire_version) is None
            for q in study.questionnaires
        ):
            await _refresh(pool, self._catalog)  # published through another replica
        found = study_schedules(
            study.questionnaires, lambda q, v: self._catalog.get(q, v) is not None
        )
        if known is None or known != (digest, found):
            for s in found.skipped:  # once per study version (and per change of what is skipped)
                log.warning(
                    "study schedule skipped",
                    study_id=study_id,
                    schedule_id=s.schedule_id,
                    questionnaire=f"{s.questionnaire_id}@{s.questionnaire_version}",
                    code=s.code,
                    reason=s.reason,
                )
        self._known[study_id] = (digest, found)
        SKIPPED.labels(study_id).set(len(found.skipped))
        return found

    async def by_study(
        self, pool: asyncpg.Pool, study_ids: Iterable[str]
    ) -> dict[str, tuple[Schedule, ...]]:
        """The schedules to assign for each study; a study not known here gets none now
        (its participants get them from `assign_study_versions` once it is announced: the
        protocol file's schedules are no fallback for a declared study, since an
        assignment is never taken back)."""
        out: dict[str, tuple[Schedule, ...]] = {}
        for study_id in sorted(set(study_ids)):
            found = await self.of(pool, study_id)
            out[study_id] = () if found is None else found.schedules
        return out


async def _refresh(pool: asyncpg.Pool, catalog: Catalog) -> None:
    for q in await repository.questionnaires(pool):
        catalog.add(q)


class StudyVersions:
    """What `assign_study_versions` already gave each study's existing participants in
    this process (a restart gives it again: assigning is idempotent)."""

    def __init__(self) -> None:
        self.assigned: dict[str, tuple[str, ...]] = {}


async def assign_study_versions(
    pool: asyncpg.Pool, source: ScheduleSource, done: StudyVersions
) -> int:
    """Give each declared study's participants (not withdrawn) the study's schedules they
    do not have yet: how a new study version reaches the participants enrolled before it.
    Returns how many assignments were new."""
    added = 0
    for study_id in await repository.declared_studies(pool):
        found = await source.of(pool, study_id)
        if found is None:
            continue  # not announced here yet, or no ePRO: nothing to assign
        ids = tuple(s.schedule_id for s in found.schedules)
        if done.assigned.get(study_id) == ids:
            continue
        async with pool.acquire() as conn, conn.transaction():
            rows = await repository.assign_to_study(conn, study_id, found.schedules)
            await audit_assigned(conn, rows, {p: study_id for p, _ in rows})
        done.assigned[study_id] = ids
        added += len(rows)
    return added


async def audit_assigned(
    conn: DbConnection,
    assigned: Sequence[tuple[str, str]],
    study_of: Mapping[str, str],
) -> None:
    """Each schedule a participant newly gets is an audit entry (the system assigned it)."""
    for participant_id, schedule_id in assigned:
        await audit.record(
            conn,
            actor="system:epro",
            action="schedule.assigned",
            entity="schedule",
            entity_id=f"{participant_id}/{schedule_id}",
            new={
                "participant_id": participant_id,
                "schedule_id": schedule_id,
                "study_id": study_of.get(participant_id, DEFAULT_STUDY),
            },
        )

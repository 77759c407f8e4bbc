"""What telehealth reads of a study file: the visit schedule its participants are planned
from, and its sites' timezones. Pure.

A participant's schedule is fixed at enrolment: the visits of the study version in force
then are stored with the participant (`Plan`), so a later version of the study file
changes new enrolments only. The implicit default study has no file: its participants are
planned from `TELEHEALTH_PROTOCOL` and its sites keep the timezone the admin route sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trialstream.studies import StudyDefinition

from telehealth.domain.windows import ProtocolVisit

# (study_id, site_id) -> the timezone the study file gives the site; None where no study
# file does (the default study, a site the file does not list, a study not read yet).
SiteZones = Callable[[str, str], str | None]


def no_study_zones(study_id: str, site_id: str) -> str | None:
    """No study file sets any site's timezone (tests and tools without a registry)."""
    return None


def study_site_timezone(study: StudyDefinition | None, site_id: str) -> str | None:
    site = None if study is None else study.site(site_id)
    return None if site is None else site.timezone


@dataclass(frozen=True)
class Plan:
    """The visits a participant is planned from: `visits` None means the service's
    TELEHEALTH_PROTOCOL (the default study, and everyone enrolled before migration 0006);
    otherwise their study's visits as declared when they enrolled (possibly none)."""

    study_id: str
    visits: tuple[ProtocolVisit, ...] | None

    @classmethod
    def of_study(cls, study_id: str, study: StudyDefinition | None) -> Plan:
        """None: no study file (the default study) - the service's protocol applies."""
        if study is None:
            return cls(study_id, None)
        return cls(study_id, tuple(ProtocolVisit(**v.model_dump()) for v in study.visits))

    def protocol(self, settings_protocol: Sequence[ProtocolVisit]) -> list[ProtocolVisit]:
        return list(settings_protocol if self.visits is None else self.visits)

    def stored(self) -> str | None:
        """As the `participants.protocol` column holds it (JSON)."""
        if self.visits is None:
            return None
        return json.dumps([v.model_dump(mode="json") for v in self.visits])

    @classmethod
    def from_stored(cls, study_id: str, stored: str | None) -> Plan:
        if stored is None:
            return cls(study_id, None)
        return cls(study_id, tuple(ProtocolVisit.model_validate(v) for v in json.loads(stored)))

    def described(self) -> dict[str, str | None]:
        """For the participant's schedule answer: where the visits come from, and why
        there are none when the study declares none (an answer, not an error)."""
        if self.visits is None:
            return {"source": "settings", "note": None}
        note = (
            None
            if self.visits
            else f"Study '{self.study_id}' declares no visits in its study file: "
            "telehealth plans none for its participants."
        )
        return {"source": "study", "note": note}

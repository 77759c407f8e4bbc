"""A participant's effective nudge rules: what they (or staff for them) chose, on top of
their study's `retention` rules, or of the service settings for the implicit default
study. Pure: the study definition is an argument (read from the studies topic by the
caller at the moment a nudge is decided, so a new study version applies from then on).

The rule (docs/services/retention.md, "Study rules"):
- quiet hours: the participant's explicit choice wins; else the study's; else 21:00-08:00.
  Two quiet windows cannot be ordered by strictness (22-07 vs 20-06), and their union may
  leave a participant who works nights no hour at all, so an explicit choice is taken as
  the participant's own word on when not to be disturbed.
- daily cap: the smaller of the study's and the participant's (a preference may only be
  stricter); for the default study the participant's, else the service setting (as before).
- language: the participant's if the study lists it (or its base language), else the first
  language of the participant's site in the study file, else the study's first retention
  language; for the default study the participant's, else "en" (as before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from trialstream.identity import DEFAULT_STUDY
from trialstream.studies import StudyDefinition

from retention.domain import ChannelKind, Preferences

SERVICE_QUIET_START = time(21, 0)
SERVICE_QUIET_END = time(8, 0)
SERVICE_LANGUAGE = "en"


@dataclass(frozen=True)
class Chosen:
    """What is stored for one participant: None where nobody chose (the study's or the
    service's rule applies; a timezone: the enrolment's, then UTC)."""

    timezone: str | None = None
    channel: ChannelKind = ChannelKind.PUSH
    opted_out: frozenset[ChannelKind] = frozenset()
    language: str | None = None
    quiet_start: time | None = None
    quiet_end: time | None = None
    max_per_day: int | None = None


@dataclass(frozen=True)
class Rules:
    """The preferences a decision uses, and a sentence saying where they came from (for
    the nudge's journey; empty for the default study, whose journey reads as before)."""

    prefs: Preferences
    source: str = ""


def _base(tag: str) -> str:
    return tag.replace("_", "-").split("-", 1)[0].lower()


def study_language(
    wanted: str | None, study: StudyDefinition, site_id: str | None
) -> tuple[str, str]:
    """(language, why) for a participant of `study`."""
    listed = study.retention.languages
    if wanted is not None:
        exact = next((t for t in listed if t.lower() == wanted.lower()), None)
        same_base = next((t for t in listed if _base(t) == _base(wanted)), None)
        if exact or same_base:
            return (exact or same_base or wanted), f"participant's language {wanted}"
    not_listed = (
        f"participant's {wanted} not in the study's {', '.join(listed)}"
        if wanted is not None
        else "no participant language"
    )
    site = study.site(site_id) if site_id is not None else None
    if site is not None:
        return site.languages[0], f"first language of site {site.id} ({not_listed})"
    return listed[0], f"study's first retention language ({not_listed}; site not in the study)"


def effective_rules(
    chosen: Chosen, study_id: str, study: StudyDefinition | None, site_id: str | None, cap: int
) -> Rules:
    """The rules for one participant of `study_id`. `study` None: the default study, or a
    declared one this process has not read from the studies topic yet; both fall back to
    the service's own settings (`cap`, 21:00-08:00), the second saying so in the journey."""
    explicit_quiet = chosen.quiet_start is not None and chosen.quiet_end is not None
    if study is None:
        prefs = _prefs(
            chosen,
            language=chosen.language or SERVICE_LANGUAGE,
            quiet=_quiet(chosen) if explicit_quiet else (SERVICE_QUIET_START, SERVICE_QUIET_END),
            cap=cap if chosen.max_per_day is None else chosen.max_per_day,
        )
        unread = (
            "" if study_id == DEFAULT_STUDY else f"study {study_id} not read yet: service rules"
        )
        return Rules(prefs, unread)
    rules = study.retention
    language, why = study_language(chosen.language, study, site_id)
    quiet = _quiet(chosen) if explicit_quiet else (rules.quiet_start, rules.quiet_end)
    study_cap = rules.max_per_day
    own_cap = chosen.max_per_day
    prefs = _prefs(
        chosen,
        language=language,
        quiet=quiet,
        cap=study_cap if own_cap is None else min(study_cap, own_cap),
    )
    quiet_from = "participant's" if explicit_quiet else "study's"
    cap_from = "participant's" if own_cap is not None and own_cap < study_cap else "study's"
    source = (
        f"study {study.study_id}: language {language} ({why}); "
        f"quiet {quiet[0]:%H:%M}-{quiet[1]:%H:%M} ({quiet_from}); "
        f"cap {prefs.max_per_day}/day ({cap_from})"
    )
    return Rules(prefs, source)


def _quiet(chosen: Chosen) -> tuple[time, time]:
    assert chosen.quiet_start is not None
    assert chosen.quiet_end is not None
    return chosen.quiet_start, chosen.quiet_end


def _prefs(chosen: Chosen, *, language: str, quiet: tuple[time, time], cap: int) -> Preferences:
    return Preferences(
        language=language,
        timezone=chosen.timezone or "UTC",
        channel=chosen.channel,
        opted_out=chosen.opted_out,
        quiet_start=quiet[0],
        quiet_end=quiet[1],
        max_per_day=cap,
    )

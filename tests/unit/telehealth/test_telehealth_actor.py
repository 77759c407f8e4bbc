"""Who acts in telehealth, without a server: the permission matrix at a site."""

from __future__ import annotations

from staff_tokens import principal
from telehealth.domain.actor import Actor
from trialstream.identity import Action, Role
from trialstream.staff import BOOTSTRAP

READ, MANAGE = Action.READ_PARTICIPANT_DATA, Action.MANAGE_PARTICIPANTS


def test_site_staff_act_at_their_own_site_only() -> None:
    nurse = Actor(principal(Role.SITE_STAFF, "site-a"), MANAGE)
    assert nurse.at("site-a")
    assert not nurse.at("site-b")
    assert not nurse.at(None)  # a record without a site is nobody's to change


def test_a_monitor_reads_every_site_but_manages_none() -> None:
    monitor = principal(Role.MONITOR)
    assert Actor(monitor, READ).at("site-a")
    assert Actor(monitor, READ).at("site-b")
    assert not Actor(monitor, MANAGE).at("site-a")


def test_a_sponsor_reads_no_participant_level_data() -> None:
    assert not Actor(principal(Role.SPONSOR), READ).at("site-a")


def test_the_audit_names_a_person_by_subject_and_the_admin_token_as_admin() -> None:
    assert Actor(principal(Role.INVESTIGATOR, "site-a")).actor == "staff:investigator-1"
    assert Actor(BOOTSTRAP).actor == "admin"
    assert Actor(BOOTSTRAP).at("any-site")

"""Who may grant what, and what a sign-in hands out. Pure: no database, no HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trialstream.errors import Kind, Refused
from trialstream.identity import Grant, Principal, Role


@dataclass(frozen=True)
class Person:
    subject: str
    name: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


def check_may_grant(by: Principal, grants: Sequence[Grant]) -> None:
    """A study admin grants roles in their own study, never platform_admin; a platform
    admin grants anything."""
    for grant in grants:
        if by.is_platform_admin:
            continue
        if grant.role is Role.PLATFORM_ADMIN or grant.study_id is None:
            raise Refused(
                Kind.FORBIDDEN, "role_not_allowed", "Only a platform admin grants platform_admin."
            )
        if Role.STUDY_ADMIN not in by.roles(grant.study_id):
            raise Refused(
                Kind.FORBIDDEN,
                "role_not_allowed",
                f"Only a study admin of '{grant.study_id}' grants roles in it.",
            )


def audited_anywhere(by: Principal) -> dict[str, Any]:
    """`actor` and `actor_detail` of an audit entry a person's request writes here: the
    issuer acts across studies, so the detail names every role they hold."""
    roles = ",".join(sorted({str(g.role) for g in by.grants}))
    return {"actor": by.actor, "actor_detail": {"name": by.name, "role": roles}}

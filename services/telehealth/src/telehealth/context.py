"""What the routes and subscribers share: runtime, settings, booking policy, clock, auth."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from fastapi import Depends
from trialstream.auth import bearer_token, hash_token
from trialstream.http import ApiError
from trialstream.runtime import Runtime

from telehealth import repository
from telehealth.booking import Actor, Policy
from telehealth.errors import Refused
from telehealth.settings import TelehealthSettings


@dataclass(frozen=True)
class Context:
    runtime: Runtime
    settings: TelehealthSettings
    clock: Callable[[], datetime]

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @property
    def policy(self) -> Policy:
        return Policy(self.settings.slot_minutes, self.settings.video_base_url)

    @property
    def urgent_horizon(self) -> timedelta:
        return timedelta(hours=self.settings.urgent_horizon_hours)

    def staff_dependency(self) -> Callable[..., object]:
        async def current_staff(token: str = Depends(bearer_token)) -> Actor:
            row = await repository.staff_for_token(self.pool, hash_token(token))
            if row is None:
                raise ApiError(401, "invalid_credentials", "Unknown staff credential.")
            return Actor(row["staff_id"], row["site_id"])

        return current_staff


def api_error(exc: Refused) -> ApiError:
    return ApiError(int(exc.kind), exc.code, exc.message, exc.details)


def same_site(actor: Actor, site_id: str) -> None:
    if actor.site_id != site_id:
        raise ApiError(
            403,
            "forbidden_site",
            f"staff of site '{actor.site_id}' cannot act for site '{site_id}'",
        )

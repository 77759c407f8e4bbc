"""What staff look at: a participant's consent, who is outstanding for re-consent at a
site, and the FHIR export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from consent import repository
from consent.domain import fhir, scopes
from consent.domain.documents import overdue

EXPORT_LIMIT = 10_000  # participants in one export; a larger study exports by site


async def consent_of(pool: asyncpg.Pool, participant_id: str) -> dict[str, Any]:
    state = await repository.state(pool, participant_id)
    return {
        "participant_id": participant_id,
        "scopes_in_force": [str(s) for s in scopes.in_force(state)],
        "state": None if state is None else state.model_dump(mode="json"),
        "signatures": [s.as_dict() for s in await repository.signatures_of(pool, participant_id)],
    }


async def outstanding(
    pool: asyncpg.Pool, study_id: str, site_id: str | None, *, pauses: bool = False
) -> dict[str, Any]:
    """Participants still in the study whose latest signature is older than the newest
    version that requires re-consent at their site (or who never signed), with the
    deadline, whether it has passed, and whether their data is paused for it (`pauses`:
    the study's file says so, decision 0088)."""
    today = datetime.now(UTC).date()
    out = []
    required_at: dict[str, Any] = {}
    for row in await repository.standing(pool, study_id, site_id):
        site = row["site_id"]
        if site not in required_at:
            required_at[site] = await repository.required_version(pool, study_id, site)
        required = required_at[site]
        signed = row["signed_version"]
        if signed is not None and (required is None or signed >= required["version"]):
            continue
        late = required is not None and overdue(required["reconsent_by"], today)
        out.append(
            {
                "participant_id": row["participant_id"],
                "site_id": site,
                "signed_version": signed,
                "required_version": None if required is None else required["version"],
                "reconsent_by": None
                if required is None or required["reconsent_by"] is None
                else required["reconsent_by"].isoformat(),
                "overdue": late,
                "data_paused": late and signed is not None and pauses,
            }
        )
    after = "pause" if pauses else "continue"
    return {
        "study_id": study_id,
        "site_id": site_id,
        "after_reconsent_deadline": after,
        "outstanding": out,
    }


async def fhir_export(pool: asyncpg.Pool, study_id: str, site_id: str | None) -> dict[str, Any]:
    rows = await repository.latest_signatures(pool, study_id, site_id, EXPORT_LIMIT)
    return fhir.bundle([fhir.consent_resource(sig, state) for sig, state in rows])

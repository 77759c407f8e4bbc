"""GET /v1/scoring says which rules, limits and model every alert of this process carries."""

from __future__ import annotations

import httpx
from anomaly.api import router, scoring_config
from anomaly.config import ScoringConfig
from anomaly.studies import StudyScoring
from fastapi import FastAPI
from staff_tokens import JWKS, staff_token
from trialstream.http import install_error_handlers
from trialstream.settings import ServiceSettings
from trialstream.staff import StaffAccess, staff_access
from trialstream.studies import StudyDefinition, StudyRegistry

ADMIN = "scoring-admin"
ACCESS = StaffAccess(ServiceSettings(admin_token=ADMIN, oidc_jwks=JWKS))


def studies() -> StudyRegistry:
    registry = StudyRegistry()
    site = [{"id": "site-a", "timezone": "UTC"}]
    chosen: dict[str, dict[str, str]] = {"OLD": {"scoring_profile": "classic"}}
    for study_id, modules in (
        ("HF", ["ingest", "anomaly"]),
        ("NOSCORE", ["ingest"]),
        ("OLD", ["ingest", "anomaly"]),
    ):
        registry.apply(
            1,
            StudyDefinition.model_validate(
                {
                    "study_id": study_id,
                    "title": "t",
                    "sponsor": "s",
                    "sites": site,
                    "modules": modules,
                    "alert_limits": [{"rule": "heart-rate-high", "value": 105}],
                }
                | chosen.get(study_id, {})
            ),
        )
    registry.caught_up = True
    return registry


def app(config: ScoringConfig) -> FastAPI:
    api = FastAPI()
    install_error_handlers(api)
    api.include_router(router)
    scoring = StudyScoring(config, studies())
    api.dependency_overrides[scoring_config] = lambda: scoring
    api.dependency_overrides[staff_access] = lambda: ACCESS
    return api


ANYONE = staff_token(None, "platform_admin")


async def get(
    config: ScoringConfig, token: str | None = ANYONE, study: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app(config))
    params = {"study": study} if study else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/v1/scoring", headers=headers, params=params)


async def test_the_default_is_the_device_mix_profile() -> None:
    body = (await get(ScoringConfig.default())).json()
    assert (body["profile"], body["model_version"]) == ("device-mix", "device-mix/rules-3.4")
    high = next(x for x in body["limits"] if x["rule"] == "clinical-limit/heart-rate-high")
    assert high["bands"] == [{"threshold": 131, "band": 3}, {"threshold": 120, "band": 2}]
    assert body["persistence"]["heart-rate"]["min_minutes"] == 2
    assert body["irregular_rhythm"] is True


async def test_the_classic_profile_is_described_with_its_limits_and_model() -> None:
    body = (await get(ScoringConfig.classic())).json()
    assert (body["profile"], body["model_version"]) == ("classic", "classic/rules-2.0")
    high = next(x for x in body["limits"] if x["rule"] == "clinical-limit/heart-rate-high")
    assert high["bands"] == [{"threshold": 131, "band": 3}, {"threshold": 111, "band": 2}]
    assert high["suppressed_by_activity"] is True
    assert body["persistence"]["heart-rate"]["min_readings"] == 5
    assert body["multivariate"]["version"].startswith("iforest")
    assert body["multivariate"]["persistence"]["min_readings"] == 2


async def test_a_study_override_and_the_device_mix_profile_show_as_they_score() -> None:
    config = ScoringConfig.device_mix().for_study({"clinical-limit/heart-rate-high": 125})
    body = (await get(config)).json()
    assert body["model_version"] == "device-mix/rules-3.4"
    assert body["irregular_rhythm"] is True
    high = next(x for x in body["limits"] if x["rule"] == "clinical-limit/heart-rate-high")
    assert high["bands"][-1]["threshold"] == 125
    off = (await get(ScoringConfig(multivariate=False))).json()
    assert off["multivariate"] is None


async def test_it_is_for_signed_in_staff_only() -> None:
    assert (await get(ScoringConfig(), token=None)).status_code == 401
    assert (await get(ScoringConfig(), token="not-it")).status_code == 401
    bootstrap = await get(ScoringConfig(), token=ADMIN)  # the admin token: identity only
    assert (bootstrap.status_code, bootstrap.json()["error"]["code"]) == (401, "bootstrap_only")
    sponsor = staff_token(None, "sponsor", study="S-1")  # aggregates: every role
    assert (await get(ScoringConfig(), token=sponsor)).status_code == 200


async def test_a_study_shows_the_limits_its_participants_are_scored_with() -> None:
    body = (await get(ScoringConfig.default(), study="HF")).json()
    assert (body["profile"], body["model_version"]) == ("device-mix", "device-mix/rules-3.4+HF")
    high = next(x for x in body["limits"] if x["rule"] == "clinical-limit/heart-rate-high")
    # the alerting threshold moved to 105; the high band (131) stays above it
    assert high["bands"] == [{"threshold": 131, "band": 3}, {"threshold": 105, "band": 2}]
    missing = await get(ScoringConfig(), study="NOPE")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_study")
    off = await get(ScoringConfig(), study="NOSCORE")
    assert (off.status_code, off.json()["error"]["code"]) == (409, "module_not_enabled")


async def test_a_study_that_chooses_the_classic_profile_is_scored_and_shown_with_it() -> None:
    body = (await get(ScoringConfig.default(), study="OLD")).json()
    assert (body["profile"], body["model_version"]) == ("classic", "classic/rules-2.0+OLD")
    assert body["persistence"]["heart-rate"]["min_readings"] == 5  # classic: reading counts
    assert body["irregular_rhythm"] is False
    high = next(x for x in body["limits"] if x["rule"] == "clinical-limit/heart-rate-high")
    assert high["bands"] == [{"threshold": 131, "band": 3}, {"threshold": 105, "band": 2}]
    # a platform started with the classic profile scores a study that does not choose with it
    classic = (await get(ScoringConfig.classic(), study="HF")).json()
    assert classic["model_version"] == "classic/rules-2.0+HF"

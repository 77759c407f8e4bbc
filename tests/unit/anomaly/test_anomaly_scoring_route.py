"""GET /v1/scoring says which rules, limits and model every alert of this process carries."""

from __future__ import annotations

import httpx
from anomaly.api import router, scoring_config
from anomaly.config import ScoringConfig
from fastapi import FastAPI
from trialstream.http import install_error_handlers
from trialstream.runtime import current_runtime

ADMIN = "scoring-admin"


class _Settings:
    class _Secret:
        def get_secret_value(self) -> str:
            return ADMIN

    admin_token = _Secret()


class _Runtime:
    settings = _Settings()


def app(config: ScoringConfig) -> FastAPI:
    api = FastAPI()
    install_error_handlers(api)
    api.include_router(router)
    api.dependency_overrides[scoring_config] = lambda: config
    api.dependency_overrides[current_runtime] = _Runtime
    return api


async def get(config: ScoringConfig, token: str | None = ADMIN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/v1/scoring", headers=headers)


async def test_the_default_scoring_is_described_with_its_limits_and_model() -> None:
    body = (await get(ScoringConfig())).json()
    assert body["model_version"] == "rules-2.0"
    high = next(x for x in body["limits"] if x["rule"] == "clinical-limit/heart-rate-high")
    assert high["bands"] == [{"threshold": 131, "band": 3}, {"threshold": 111, "band": 2}]
    assert high["suppressed_by_activity"] is True
    assert body["persistence"]["heart-rate"]["min_readings"] == 5
    assert body["multivariate"]["version"].startswith("iforest")
    assert body["multivariate"]["persistence"]["min_readings"] == 2


async def test_a_study_override_and_the_device_mix_profile_show_as_they_score() -> None:
    config = ScoringConfig.device_mix().for_study({"clinical-limit/heart-rate-high": 125})
    body = (await get(config)).json()
    assert body["model_version"] == "rules-3.0"
    assert body["irregular_rhythm"] is True
    high = next(x for x in body["limits"] if x["rule"] == "clinical-limit/heart-rate-high")
    assert high["bands"][-1]["threshold"] == 125
    off = (await get(ScoringConfig(multivariate=False))).json()
    assert off["multivariate"] is None


async def test_it_is_for_administrators_only() -> None:
    assert (await get(ScoringConfig(), token=None)).status_code == 401
    assert (await get(ScoringConfig(), token="not-it")).status_code == 401

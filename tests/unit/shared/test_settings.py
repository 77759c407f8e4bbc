"""Platform-wide settings are spelled TRIALSTREAM_* whatever a service's own prefix is."""

from __future__ import annotations

import pytest
from anomaly.settings import AnomalySettings
from ingest.settings import IngestSettings
from pydantic import ValidationError
from trialstream.settings import ServiceSettings


@pytest.mark.parametrize("cls", [AnomalySettings, IngestSettings])
def test_services_read_platform_settings_under_the_trialstream_prefix(
    cls: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALSTREAM_KAFKA_SESSION_TIMEOUT_MS", "2000")
    monkeypatch.setenv("TRIALSTREAM_TOPIC_PARTITIONS", "3")
    monkeypatch.setenv("TRIALSTREAM_LOG_JSON", "false")
    settings = cls()
    assert (settings.kafka_session_timeout_ms, settings.topic_partitions) == (2000, 3)
    assert settings.log_json is False


def test_production_mode_without_admin_token_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIALSTREAM_MODE", "production")
    monkeypatch.delenv("TRIALSTREAM_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="TRIALSTREAM_ADMIN_TOKEN must be set"):
        AnomalySettings()
    monkeypatch.setenv("TRIALSTREAM_ADMIN_TOKEN", "a-real-secret")
    assert AnomalySettings().mode == "production"


def test_service_specific_settings_keep_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_MAX_BATCH", "123")
    assert AnomalySettings().max_batch == 123
    assert AnomalySettings(kafka_session_timeout_ms=3000).kafka_session_timeout_ms == 3000

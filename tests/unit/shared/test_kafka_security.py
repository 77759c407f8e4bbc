"""TLS and SASL reach every Kafka client from TRIALSTREAM_KAFKA_* settings."""

from __future__ import annotations

import ssl

import pytest
from pydantic import ValidationError
from trialstream.kafka import make_broker
from trialstream.kafka_security import KafkaSecurity
from trialstream.producer import BatchProducer


def test_plaintext_by_default_adds_no_options() -> None:
    assert KafkaSecurity().client_options() == {}
    assert KafkaSecurity().faststream() is None


async def test_scram_over_tls_reaches_the_aiokafka_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIALSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TRIALSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TRIALSTREAM_KAFKA_SASL_USERNAME", "trialstream-anomaly")
    monkeypatch.setenv("TRIALSTREAM_KAFKA_SASL_PASSWORD", "s3cret")
    options = KafkaSecurity().client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "trialstream-anomaly"
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname
    producer = BatchProducer("127.0.0.1:1", client_id="t")
    assert producer._producer.client._security_protocol == "SASL_SSL"
    assert producer._producer.client._sasl_mechanism == "SCRAM-SHA-512"
    broker = make_broker("127.0.0.1:1", client_id="t")
    assert broker._connection_kwargs["security_protocol"] == "SASL_SSL"


@pytest.mark.parametrize(
    "env",
    [
        {"SECURITY_PROTOCOL": "SASL_SSL"},  # no mechanism
        {"SECURITY_PROTOCOL": "SSL", "SASL_MECHANISM": "PLAIN"},  # mechanism without SASL
        {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-256"},  # no secret
        {"SECURITY_PROTOCOL": "SSL", "SSL_CAFILE": "/nonexistent/ca.pem"},
        {"SECURITY_PROTOCOL": "TLS"},
    ],
)
def test_an_inconsistent_configuration_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(f"TRIALSTREAM_KAFKA_{key}", value)
    with pytest.raises(ValidationError):
        KafkaSecurity()

"""TLS and SASL for every Kafka client, by configuration (TRIALSTREAM_KAFKA_*).

The embedded broker and docker-compose speak PLAINTEXT on localhost; a shared or managed
cluster wants TLS and a SASL identity per service (SCRAM-SHA-512 is what Strimzi, MSK and
Confluent offer alike). Every client the platform makes (the FastStream broker, the bulk
producer, the admin client that creates topics) takes its options from here, so no client
is left in plaintext by accident. The ACLs each identity needs are generated from the
services' declarations (`trialstream acls`, deploy/k8s/kafka/).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSecurity(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIALSTREAM_KAFKA_", extra="ignore")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: FilePath | None = None  # the cluster's CA; the system's CAs if unset
    ssl_certfile: FilePath | None = None  # mutual TLS: this client's certificate
    ssl_keyfile: FilePath | None = None
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and self.sasl_mechanism is None:
            raise ValueError(f"{self.security_protocol} needs TRIALSTREAM_KAFKA_SASL_MECHANISM")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(
                "TRIALSTREAM_KAFKA_SASL_MECHANISM is set but the protocol is "
                f"{self.security_protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if sasl and (self.sasl_username is None or self.sasl_password is None):
            raise ValueError("SASL needs TRIALSTREAM_KAFKA_SASL_USERNAME and _SASL_PASSWORD")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("mutual TLS needs both TRIALSTREAM_KAFKA_SSL_CERTFILE and _KEYFILE")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            context.load_cert_chain(Path(self.ssl_certfile), Path(self.ssl_keyfile))
        return context

    def faststream(self) -> BaseSecurity | None:
        """The FastStream security object for a KafkaBroker (None: plaintext)."""
        if self.security_protocol == "PLAINTEXT":
            return None
        context = self.ssl_context()
        if self.sasl_mechanism is None:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        assert self.sasl_username is not None
        assert self.sasl_password is not None
        kind = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }[self.sasl_mechanism]
        return kind(
            self.sasl_username,
            self.sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=self.uses_tls,
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin clients."""
        options = parse_security(self.faststream())
        if options.get("ssl_context") is None:
            options.pop("ssl_context", None)
        return options

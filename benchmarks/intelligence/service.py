"""`python -m benchmarks.intelligence.service`: the same goal through the running service.

An embedded broker and PostgreSQL (durable, as `trialstream up` runs it), the intelligence
app with its lifespan (migrations, consumers, loops), 20 synthetic studies with criteria at
one site announced on the studies topic, then the candidates uploaded as NDJSON batches of
5,000 (`POST /v1/candidates/batch`) by a site coordinator, one after another, in process
(httpx's ASGI transport: no sockets, so the number is the service's, not a client's).
Each upload is parsed, minimised, evaluated against every study, and stored (candidates,
every decision as outcome codes, one audit entry) in one transaction before it is
answered.

    python -m benchmarks.intelligence.service [--candidates 100000] [--studies 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from intelligence.main import create_app
from intelligence.settings import IntelligenceSettings
from trialstream.embedded import EmbeddedKafka, EmbeddedPostgres
from trialstream.events.studies import StudyDefined
from trialstream.events.topics import Topic
from trialstream.identity import Grant, Role, SigningKey
from trialstream.kafka import make_broker
from trialstream.publishing import publish_events
from trialstream.settings import ServiceSettings
from trialstream.studies import StudyDefinition

from benchmarks.intelligence.bundles import bundle, studies

SITE = "site-bench"
BATCH = 5000


async def announce(kafka: str, count: int, seed: int) -> list[str]:
    events = []
    for study_id, eligibility in studies(count, seed):
        definition = StudyDefinition.model_validate(
            {
                "study_id": study_id,
                "title": study_id,
                "sponsor": "Bench",
                "sites": [{"id": SITE, "timezone": "UTC"}],
                "modules": ["ingest"],
                "eligibility": eligibility.model_dump(mode="json"),
            }
        )
        event = StudyDefined(version=1, digest=definition.digest(), definition=definition)
        events.append((study_id, event))
    broker = make_broker(kafka, client_id="bench")
    await broker.start()
    try:
        await publish_events(broker, Topic.STUDIES, events)
    finally:
        await broker.stop()
    return [s for s, _ in events]


async def run(candidates: int, study_count: int, seed: int) -> dict[str, Any]:
    key = SigningKey.generate()
    defaults = ServiceSettings()
    token = key.issue(
        issuer=defaults.oidc_issuer,
        audience=defaults.oidc_audience,
        subject="bench-coordinator",
        name="Bench Coordinator",
        grants=[Grant(Role.SITE_STAFF, "BENCH-00", SITE)],
    )
    rng = np.random.default_rng(seed)
    bodies = [
        "\n".join(json.dumps(bundle(rng, i)) for i in range(start, min(start + BATCH, candidates)))
        for start in range(0, candidates, BATCH)
    ]
    kafka = EmbeddedKafka().start()
    postgres = EmbeddedPostgres(data_dir=Path(tempfile.mkdtemp()) / "pg").start()
    try:
        await announce(kafka.bootstrap_servers, study_count, seed)
        settings = IntelligenceSettings(
            kafka_bootstrap_servers=kafka.bootstrap_servers,
            database_url=postgres.url,
            oidc_jwks=json.dumps(key.jwks()),
            rate_limit_per_second=0,
            kafka_session_timeout_ms=2000,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                for _ in range(300):  # the studies topic read, the consumer joined
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.2)
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/x-ndjson",
                }
                seconds = []
                start = time.perf_counter()
                for body in bodies:
                    t = time.perf_counter()
                    r = await client.post(
                        "/v1/candidates/batch", params={"site": SITE}, content=body, headers=headers
                    )
                    r.raise_for_status()
                    seconds.append(time.perf_counter() - t)
                total = time.perf_counter() - start
    finally:
        postgres.stop()
        kafka.stop()
    return {
        "candidates": candidates,
        "studies": study_count,
        "uploads": len(bodies),
        "seconds": round(total, 2),
        "bundles_per_second": round(candidates / total),
        "upload_seconds_median": round(float(np.median(seconds)), 2),
        "decisions_stored": candidates * study_count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    result = asyncio.run(run(args.candidates, args.studies, args.seed))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

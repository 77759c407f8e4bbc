"""Score every enrolled participant's dropout risk and store it with the model version;
publish each (study, site)'s summary of the scores (aggregates only, decision 0090)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import numpy as np
from trialstream.events.retention_risk import RetentionRiskSummary
from trialstream.events.topics import Topic
from trialstream.outbox import enqueue

from retention import repository
from retention.risk import FEATURES, RiskModel


def summaries(
    scored: Sequence[tuple[str, str, float]], cutoff: float, version: str, now: datetime
) -> list[tuple[str | None, RetentionRiskSummary]]:
    """Per (study, site) of the (study, site, score) triples: how many were scored, how
    many (and which share) at or above `cutoff`, the mean; keyed '<study>|<site>'."""
    by_site: dict[tuple[str, str], list[float]] = defaultdict(list)
    for study, site, score in scored:
        by_site[(study, site)].append(score)
    out: list[tuple[str | None, RetentionRiskSummary]] = []
    for (study, site), scores in sorted(by_site.items()):
        high = sum(1 for s in scores if s >= cutoff)
        out.append(
            (
                f"{study}|{site}",
                RetentionRiskSummary(
                    study_id=study,
                    site_id=site,
                    scored_at=now,
                    model_version=version,
                    participants_scored=len(scores),
                    high_risk=high,
                    high_risk_cutoff=cutoff,
                    high_risk_share=round(high / len(scores), 4),
                    mean_risk=round(sum(scores) / len(scores), 4),
                ),
            )
        )
    return out


async def score_all(
    pool: asyncpg.Pool, model: RiskModel, now: datetime, high_cutoff: float = 0.5
) -> int:
    rows = await repository.engagement_features(pool, now)
    if not rows:
        return 0
    x = np.array(
        [[np.nan if r[f] is None else float(r[f]) for f in FEATURES] for r in rows], dtype=float
    )
    scores = [float(s) for s in model.score(x)]
    features = [
        json.dumps(
            {
                f: None if math.isnan(v) else round(float(v), 4)
                for f, v in zip(FEATURES, row, strict=True)
            }
        )
        for row in x
    ]
    scored = [(r["study_id"], r["site_id"], s) for r, s in zip(rows, scores, strict=True)]
    async with pool.acquire() as conn, conn.transaction():
        await repository.insert_scores(
            conn,
            [r["participant_id"] for r in rows],
            now,
            scores,
            model.version,
            features,
        )
        await enqueue(
            conn, Topic.RETENTION_RISK, summaries(scored, high_cutoff, model.version, now)
        )
    return len(rows)

"""Score every enrolled participant's dropout risk and store it with the model version."""

from __future__ import annotations

import json
import math
from datetime import datetime

import asyncpg
import numpy as np

from retention import repository
from retention.risk import FEATURES, RiskModel


async def score_all(pool: asyncpg.Pool, model: RiskModel, now: datetime) -> int:
    rows = await repository.engagement_features(pool, now)
    if not rows:
        return 0
    x = np.array(
        [[np.nan if r[f] is None else float(r[f]) for f in FEATURES] for r in rows], dtype=float
    )
    scores = model.score(x)
    features = [
        json.dumps(
            {
                f: None if math.isnan(v) else round(float(v), 4)
                for f, v in zip(FEATURES, row, strict=True)
            }
        )
        for row in x
    ]
    await repository.insert_scores(
        pool,
        [r["participant_id"] for r in rows],
        now,
        [float(s) for s in scores],
        model.version,
        features,
    )
    return len(rows)

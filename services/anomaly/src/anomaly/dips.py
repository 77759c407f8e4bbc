"""Brief SpO2 dips counted per day for the site, not paged (device-mix profile, issue 21).

Sleep-apnea-like dips (SpO2 at or below the desaturation limit for 1-3 min, many a night)
are not events: the low-SpO2 rule waits for a dense run to outlast them
(`ScoringConfig.brief_dip_minutes`). They still matter to the site, so each participant's
state counts them per UTC day: a dip starts at a reading at or below the limit whose
reading before was above it; readings taken while walking (motion artefacts) do not
count. The last `KEPT_DAYS` days are kept and shown by
`GET /v1/participants/{id}/night-summary` (anomaly.api).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from anomaly.config import Limit
from anomaly.episodes import Rows
from anomaly.state import ParticipantState

US_PER_DAY = 86_400 * 1_000_000
KEPT_DAYS = 14
EPOCH_DAY = date(1970, 1, 1)


def count(
    limit: Limit, rows: Rows, band: npt.NDArray[np.int8], held: list[ParticipantState]
) -> None:
    """Add the dips that start in these SpO2 rows (one group per participant, `held`
    their states) to each participant's daily counts."""
    low = band > 0
    before = np.zeros(len(low), dtype=np.bool_)
    before[1:] = low[:-1]
    with np.errstate(invalid="ignore"):  # NaN: no reading before this batch
        before[rows.first] = limit.band_of(rows.v_before) > 0
    starts = np.flatnonzero(low & ~before)
    if not len(starts):
        return
    days = (rows.t[starts] // US_PER_DAY).tolist()
    for g, day in zip(rows.group[starts].tolist(), days, strict=True):
        dips = held[g].dips
        dips[day] = dips.get(day, 0) + 1
    for state in {id(held[g]): held[g] for g in rows.group[starts].tolist()}.values():
        newest = max(state.dips)
        for old in [d for d in state.dips if d <= newest - KEPT_DAYS]:
            del state.dips[old]


def daily(dips: Mapping[int, int]) -> list[tuple[date, int]]:
    """(UTC date, dips) for each day with a count, oldest first."""
    return [(EPOCH_DAY + timedelta(days=d), n) for d, n in sorted(dips.items())]

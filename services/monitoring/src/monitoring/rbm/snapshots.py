"""Each (study, site)'s KRIs and open work after an evaluation, as one event on the
compacted kri-snapshots topic (decision 0090): what a sponsor's portfolio (the
intelligence service) shows, without asking monitoring over HTTP. Aggregates only.

Pure apart from `open_work`'s query (rbm.repository)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime

from trialstream.events.monitoring import KriReading, KriThreshold, SiteKriSnapshot

from monitoring.rbm.kri import KRIS, KriConfig, KriInputs

# (study, site) -> (open alerts, open flags)
OpenWork = Mapping[tuple[str, str], tuple[int, int]]


def snapshot_key(study: str, site: str) -> str:
    return f"{study}|{site}"


def snapshot(
    study: str,
    site: str,
    inputs: KriInputs,
    cfg: KriConfig,
    participants: int,
    open_work: tuple[int, int],
    now: datetime,
) -> SiteKriSnapshot:
    """The site's pooled KRI values judged by `cfg` (its study's thresholds)."""
    values = inputs.values()
    readings = []
    for name, definition in KRIS.items():
        threshold = cfg.thresholds[name]
        readings.append(
            KriReading(
                kri=name,
                label=definition.label,
                value=values[name],
                unit=definition.unit,
                threshold=KriThreshold(**threshold.as_dict()),
                status=threshold.status(values[name]),
            )
        )
    return SiteKriSnapshot(
        study_id=study,
        site_id=site,
        evaluated_at=now,
        window_days=cfg.window_days,
        participants=participants,
        kris=tuple(readings),
        open_alerts=open_work[0],
        open_flags=open_work[1],
        alerts_in_window=len(inputs.ack_minutes),  # one per alert received in the window
        participant_days=round(inputs.dq.den, 2),
    )


def snapshots(
    sites: Mapping[tuple[str, str], KriInputs],
    people: Mapping[str, tuple[str, str, KriInputs]],
    configs: Mapping[str, KriConfig],
    open_work: OpenWork,
    now: datetime,
) -> list[tuple[str | None, SiteKriSnapshot]]:
    """One keyed snapshot per (study, site) of a study being evaluated, in key order."""
    counts = Counter((study, site) for study, site, _ in people.values())
    out: list[tuple[str | None, SiteKriSnapshot]] = []
    for study, site in sorted(sites):
        if study in configs:
            work = open_work.get((study, site), (0, 0))
            made = snapshot(
                study, site, sites[(study, site)], configs[study], counts[(study, site)], work, now
            )
            out.append((snapshot_key(study, site), made))
    return out

"""The portfolio's early-warning KRIs beyond enrolment (issue 19, decision 0090): data
completeness, alert load, time to acknowledge and retention risk per (study, site), as
traffic lights, from the latest snapshots monitoring and retention publish.

A light whose snapshot is older than its source's staleness limit is "unknown" and says
since when (`as_of`: the evaluation it comes from); a site with no snapshot at all is
"unknown" with no `as_of`. Monitoring's KRIs keep monitoring's thresholds (the study's);
alert load and retention risk are judged here, by the settings' limits. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

LIGHTS = ("data_completeness", "alert_load", "time_to_acknowledge", "retention_risk")
# the portfolio's light -> monitoring's KRI it shows
FROM_KRI = {"data_completeness": "wear_time", "time_to_acknowledge": "ack_median"}
_ORDER = ("unknown", "green", "amber", "red")


@dataclass(frozen=True)
class Limits:
    kri_stale_after: timedelta
    risk_stale_after: timedelta
    alert_load_amber: float  # alerts per participant-day
    alert_load_red: float
    high_risk_amber: float  # % of scored participants at high dropout risk
    high_risk_red: float


def judge(value: float | None, amber: float, red: float) -> str:
    """Higher is worse."""
    if value is None:
        return "unknown"
    return "red" if value > red else "amber" if value > amber else "green"


def _base(at: datetime | None, stale_after: timedelta, now: datetime) -> dict[str, Any]:
    stale = at is not None and now - at > stale_after
    return {
        "as_of": None if at is None else at.isoformat(),
        "stale": stale,
        "stale_since": None if not stale or at is None else (at + stale_after).isoformat(),
    }


def _unknown(reason: str, base: dict[str, Any]) -> dict[str, Any]:
    return {"status": "unknown", "value": None, "unit": None, "threshold": None,
            "reason": reason, **base}  # fmt: skip


def _from_kri(snapshot: Mapping[str, Any], name: str, base: dict[str, Any]) -> dict[str, Any]:
    found = next((k for k in snapshot["kris"] if k["kri"] == name), None)
    if found is None:
        return _unknown("not evaluated", base)
    return {
        "status": "unknown" if base["stale"] else found["status"],
        "value": found["value"],
        "unit": found["unit"],
        "threshold": found["threshold"],
        "reason": "stale"
        if base["stale"]
        else None
        if found["value"] is not None
        else "too little data",
        **base,
    }


def _alert_load(
    snapshot: Mapping[str, Any], limits: Limits, base: dict[str, Any]
) -> dict[str, Any]:
    days = snapshot["participant_days"]
    rate = round(snapshot["alerts_in_window"] / days, 4) if days > 0 else None
    status = judge(rate, limits.alert_load_amber, limits.alert_load_red)
    return {
        "status": "unknown" if base["stale"] else status,
        "value": rate,
        "unit": "alerts/participant-day",
        "threshold": {"amber": limits.alert_load_amber, "red": limits.alert_load_red,
                      "direction": "above"},
        "reason": "stale" if base["stale"] else None if rate is not None else "too little data",
        "open_alerts": snapshot["open_alerts"],
        "open_flags": snapshot["open_flags"],
        "alerts_in_window": snapshot["alerts_in_window"],
        **base,
    }  # fmt: skip


def _retention(summary: Mapping[str, Any], limits: Limits, base: dict[str, Any]) -> dict[str, Any]:
    share = round(100 * summary["high_risk_share"], 2)
    return {
        "status": "unknown" if base["stale"] else judge(
            share, limits.high_risk_amber, limits.high_risk_red
        ),
        "value": share,
        "unit": "% at high risk",
        "threshold": {"amber": limits.high_risk_amber, "red": limits.high_risk_red,
                      "direction": "above"},
        "reason": "stale" if base["stale"] else None,
        "participants_scored": summary["participants_scored"],
        "high_risk": summary["high_risk"],
        "high_risk_cutoff": summary["high_risk_cutoff"],
        "mean_risk": summary["mean_risk"],
        "model_version": summary["model_version"],
        **base,
    }  # fmt: skip


def site_lights(
    snapshot: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    at: tuple[datetime | None, datetime | None],
    now: datetime,
    limits: Limits,
) -> dict[str, dict[str, Any]]:
    """A site's four lights from its latest KRI snapshot and retention summary (event
    payloads as dicts; None: none arrived), `at` their evaluation and scoring times."""
    kri_base = _base(at[0], limits.kri_stale_after, now)
    risk_base = _base(at[1], limits.risk_stale_after, now)
    out: dict[str, dict[str, Any]] = {}
    if snapshot is None:
        for name in ("data_completeness", "alert_load", "time_to_acknowledge"):
            out[name] = _unknown("no snapshot from monitoring", kri_base)
    else:
        for light, kri in FROM_KRI.items():
            out[light] = _from_kri(snapshot, kri, kri_base)
        out["alert_load"] = _alert_load(snapshot, limits, kri_base)
    out["retention_risk"] = (
        _unknown("no summary from retention", risk_base)
        if summary is None
        else _retention(summary, limits, risk_base)
    )
    return {name: out[name] for name in LIGHTS}


def worst(statuses: Sequence[str]) -> str:
    """The worst known light ("unknown" only if none is known)."""
    return max(statuses, key=_ORDER.index, default="unknown")


def study_lights(sites: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per light, the worst of the sites' (those that have early-warning lights)."""
    lit = [s["early_warning"] for s in sites if s.get("early_warning")]
    return {name: worst([w[name]["status"] for w in lit]) for name in LIGHTS}

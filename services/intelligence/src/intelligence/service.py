"""Use cases: screen uploaded candidates, refer and record screening, follow enrolments,
re-make stored decisions, forecast enrollment."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import TypeAdapter, ValidationError
from trialstream import audit
from trialstream.eligibility import Eligibility
from trialstream.errors import Kind, Refused
from trialstream.events.participants import ParticipantState
from trialstream.http import field_errors
from trialstream.identity import Action, Principal
from trialstream.staff import audited_as
from trialstream.studies import StudyDefinition, StudyRegistry

from intelligence import early_warning, repository
from intelligence.domain import kri, matching, risk
from intelligence.domain.fhir import Bundle, Candidate, minimise, problem
from intelligence.domain.forecast import forecast
from intelligence.domain.lights import Limits

MAX_LINE_ERRORS = 50
_BUNDLE: TypeAdapter[Bundle] = TypeAdapter(Bundle)


def parse_bundles(lines: Sequence[bytes | str | dict[str, Any]], field: str) -> list[Bundle]:
    """Each item a FHIR Bundle, or 422 naming every field that is not (`lines[3].entry...`
    for a batch; at most MAX_LINE_ERRORS of them). The values are never echoed."""
    bundles, details = [], []
    for i, item in enumerate(lines):
        where = f"{field}[{i}]" if len(lines) > 1 or field == "lines" else field
        try:
            bundle = (
                _BUNDLE.validate_python(item)
                if isinstance(item, dict)
                else _BUNDLE.validate_json(item)
            )
        except ValidationError as exc:
            for d in field_errors(exc.errors(include_input=False)):
                d["field"] = f"{where}.{d['field']}" if d["field"] else where
                details.append(d)
        else:
            wrong = problem(bundle)
            if wrong is None:
                bundles.append(bundle)
            else:
                details.append({"field": where, "code": "value_error", "message": wrong})
            if len(details) >= MAX_LINE_ERRORS:
                break
    if details:
        raise Refused(
            Kind.INVALID, "invalid_bundle", "Not a FHIR R4 Bundle this service reads.", details
        )
    return bundles


def screening_studies(studies: StudyRegistry, site_id: str) -> list[StudyDefinition]:
    """The studies a candidate of this site is screened for: those with criteria that
    run at the site."""
    return [d for d in studies.definitions() if d.eligibility and d.site(site_id)]


def may_upload_at(by: Principal, site_id: str) -> bool:
    studies = {g.study_id for g in by.grants}
    if None in studies:
        return True
    return any(by.allows(Action.MANAGE_PARTICIPANTS, s, site_id) for s in studies if s)


async def screen(
    pool: asyncpg.Pool,
    studies: StudyRegistry,
    model: risk.RiskModel,
    site_id: str,
    bundles: Sequence[Bundle],
    by: Principal,
    today: date,
    explain: bool = True,
) -> dict[str, Any]:
    """Minimise, evaluate against every study with criteria at the site, store the
    records and decisions (one transaction, one audit entry), answer the decisions
    (explained when `explain`; a batch's answer counts them, so it does not)."""
    if not may_upload_at(by, site_id):
        raise Refused(Kind.FORBIDDEN, "forbidden_site", f"you have no role at site '{site_id}'")
    targets = screening_studies(studies, site_id)
    if not targets:
        raise Refused(
            Kind.CONFLICT,
            "no_screening_study",
            f"No study with eligibility criteria runs at site '{site_id}'.",
        )
    pairs = [(s.study_id, s.eligibility) for s in targets if s.eligibility is not None]
    criteria = [(sid, matching.digest(e), e.version, e.model_dump_json()) for sid, e in pairs]
    async with pool.acquire() as conn:
        history = await repository.site_failure_rates(conn, site_id)
    rates = {sid: risk.site_rate(*history.get(sid, (0, 0))) for sid, _ in pairs}

    def decide() -> tuple[list[Candidate], matching.Columns, list[matching.Decision]]:
        latest: dict[str, Candidate] = {}
        for b in bundles:  # a candidate sent twice in one upload: the last one
            c = minimise(b, today)
            latest[c.candidate_id] = c
        candidates = list(latest.values())
        made = matching.evaluate(candidates, pairs, model, rates)
        answer = matching.decisions(made) if explain else []
        return candidates, matching.columns(made), answer

    # CPU work of up to a few seconds: off the event loop, so /readyz and the enrolment
    # consumer keep answering meanwhile
    candidates, stored, made = await asyncio.to_thread(decide)
    async with pool.acquire() as conn, conn.transaction():
        await repository.store(conn, site_id, candidates, criteria, stored, by.actor, model.version)
        # checked after the upsert: a concurrent upload of the same new candidate at another
        # site has then either committed (seen here) or waits on our rows (and sees ours)
        taken = await repository.elsewhere(conn, [c.candidate_id for c in candidates], site_id)
        if taken:
            raise Refused(
                Kind.CONFLICT,
                "candidate_elsewhere",
                "These candidates are on record at another site.",
                [
                    {"field": "candidate_id", "code": "candidate_elsewhere", "message": c}
                    for c in taken
                ],
            )
        await audit.record(
            conn,
            **audited_as(by),
            action="candidates.screened",
            entity="site",
            entity_id=site_id,
            new={"candidates": len(candidates), "studies": [s for s, _ in pairs]},
        )
    return {
        "site_id": site_id,
        "candidates": len(candidates),
        "risk_model": model.version,
        "counts": stored.counts(),
        "decisions": [
            {
                "candidate_id": d.candidate_id,
                "study_id": d.study_id,
                "criteria_version": d.criteria_version,
                "decision": d.decision,
                "risk": d.risk,
                "explanation": d.explanation,
            }
            for d in made
        ],
    }


# status -> the statuses it may come from
MOVES = {
    "referred": ("evaluated",),
    "screened": ("referred",),
    "screen_failed": ("referred", "screened"),
}


async def move(
    pool: asyncpg.Pool,
    study_id: str,
    candidate_id: str,
    to: str,
    reason: str | None,
    by: Principal,
) -> dict[str, Any]:
    """Referral and the screening outcome, at the candidate's site, audited. Repeating
    the move the candidate already made changes nothing."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.decision_for_update(conn, candidate_id, study_id)
        if row is None or not by.allows(Action.MANAGE_PARTICIPANTS, study_id, row["site_id"]):
            raise Refused(
                Kind.NOT_FOUND,
                "unknown_candidate",
                f"no candidate '{candidate_id}' screened for study '{study_id}' at your sites",
            )
        if row["status"] == to and row["status_reason"] == reason:
            return dict(row)
        if to == "referred" and row["decision"] == "ineligible":
            raise Refused(Kind.CONFLICT, "ineligible", "An ineligible candidate is not referred.")
        if row["status"] not in MOVES[to]:
            raise Refused(
                Kind.CONFLICT,
                "wrong_status",
                f"a candidate who is '{row['status']}' cannot become '{to}'",
            )
        await repository.set_status(conn, candidate_id, study_id, to, reason)
        await audit.record(
            conn,
            **audited_as(by, study_id),
            action=f"candidate.{to}",
            entity="candidate",
            entity_id=f"{study_id}/{candidate_id}",
            old={"status": row["status"]},
            new={"status": to},
            reason=reason,
        )
        after = await repository.decision_for_update(conn, candidate_id, study_id)
    assert after is not None
    return dict(after)


async def record_enrolments(pool: asyncpg.Pool, events: Sequence[ParticipantState]) -> int:
    """Enrolments from the participants topic (a withdrawal names someone who was
    enrolled: it counts too, at the time it was published if it is the first record seen)."""
    if not events:
        return 0
    rows = [(e.participant_id, e.study_id, e.site_id, e.occurred_at) for e in events]
    return len(await repository.record_enrolments(pool, rows))


async def verify(pool: asyncpg.Pool, candidate_id: str, by: Principal) -> dict[str, Any]:
    """Each stored decision the caller may read, re-made from the stored record and the
    criteria version it names, and compared."""
    row = await repository.candidate(pool, candidate_id)
    stored = [] if row is None else await repository.decisions_of(pool, candidate_id)
    mine = [
        d for d in stored if by.allows(Action.READ_PARTICIPANT_DATA, d["study_id"], d["site_id"])
    ]
    if row is None or not mine:
        raise Refused(
            Kind.NOT_FOUND, "unknown_candidate", f"no candidate '{candidate_id}' at your sites"
        )
    candidate = Candidate.model_validate_json(row["record"])
    pairs = [(d["study_id"], Eligibility.model_validate_json(d["criteria"])) for d in mine]
    remade = {d.study_id: d for d in matching.decisions(matching.evaluate([candidate], pairs))}
    out = []
    for d in mine:
        again = remade[d["study_id"]]
        out.append(
            {
                "study_id": d["study_id"],
                "criteria_version": d["criteria_version"],
                "criteria_digest": d["criteria_digest"],
                "stored": d["decision"],
                "remade": again.decision,
                "same": again.decision == d["decision"] and again.outcomes == d["outcomes"],
            }
        )
    return {"candidate_id": candidate_id, "decisions": out}


async def ranked(
    pool: asyncpg.Pool, study_id: str, site_id: str, wanted: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """The ranked page, each decision explained from its stored outcome codes, the
    criteria it names and the stored record (margins re-made from it)."""
    rows = await repository.ranked(pool, study_id, site_id, wanted, limit)
    texts = await repository.criteria_of(
        pool, study_id, sorted({r["criteria_digest"] for r in rows})
    )

    def explained() -> list[dict[str, Any]]:
        out = [dict(r) for r in rows]
        for made_under, text in texts.items():
            page = [o for o in out if o["criteria_digest"] == made_under]
            records = [Candidate.model_validate_json(o.pop("record")) for o in page]
            eligibility = Eligibility.model_validate_json(text)
            outcomes = [o["outcomes"] for o in page]
            for o, e in zip(
                page, matching.explain_stored(records, eligibility, outcomes), strict=True
            ):
                o["explanation"] = e
        for o in out:
            o.pop("record", None)
            o.pop("outcomes")
            o.pop("criteria_digest")
        return out

    return await asyncio.to_thread(explained)


# A forecast further out than this is no date (a site with almost no enrolments can give a
# year 10,000 or an infinite draw, which no calendar holds): the answer says it is beyond.
HORIZON_DAYS = 3650.0


def forecast_interval(now: datetime, i: Any) -> dict[str, Any] | None:
    """A forecast's interval as dates and days from `now`; a bound past `HORIZON_DAYS`
    (or not finite) is `null`, with `beyond_horizon` set."""
    if i is None:
        return None

    def days(d: float) -> float | None:
        return round(d, 1) if math.isfinite(d) and d <= HORIZON_DAYS else None

    def when(d: float) -> str | None:
        return None if days(d) is None else (now + timedelta(days=d)).date().isoformat()

    return {
        "expected": when(i.median),
        "lower": when(i.lower),
        "upper": when(i.upper),
        "days": {"median": days(i.median), "lower": days(i.lower), "upper": days(i.upper)},
        "beyond_horizon": days(i.upper) is None,
        "horizon_days": HORIZON_DAYS,
    }


async def study_forecast(
    pool: asyncpg.Pool, study: StudyDefinition, now: datetime, level: float, draws: int
) -> dict[str, Any]:
    """When the study (and each site with a target) reaches its enrollment target."""
    plan = study.enrollment
    if plan is None:
        raise Refused(
            Kind.CONFLICT,
            "no_enrollment_target",
            f"Study '{study.study_id}' declares no enrollment target in its file.",
        )
    enrolled = await repository.enrolled_by_site(pool, study.study_id)
    own = {t.site: t for t in plan.sites}
    open_ids: list[str] = []
    counts: list[int] = []
    exposure: list[float] = []
    targets: list[int | None] = []
    later: list[dict[str, Any]] = []
    for site in study.sites:
        n, first = enrolled.get(site.id, (0, None))
        opened = own[site.id].opened if site.id in own else None
        start = opened or plan.start or (first.date() if first else None)
        if start is None or start > now.date():
            later.append({"site_id": site.id, "opens": start, "enrolled": n})
            continue
        open_ids.append(site.id)
        counts.append(n)
        exposure.append(max((now.date() - start).days, 0) + 0.5)
        targets.append(own[site.id].target if site.id in own else None)
    total = sum(counts) + sum(s["enrolled"] for s in later)
    base = {
        "study_id": study.study_id,
        "as_of": now.isoformat(),
        "level": level,
        "target": plan.target,
        "enrolled": total,
        "sites_not_open": later,
    }
    if not open_ids:
        return {**base, "forecast": None, "below_forecast": None, "sites": []}
    # CPU work (ms to a second for hundreds of sites) off the event loop
    made = await asyncio.to_thread(
        forecast, open_ids, counts, exposure, targets, plan.target - total + sum(counts),
        level=level, draws=draws,
    )  # fmt: skip

    lights = await asyncio.to_thread(kri.site_lights, counts, exposure, level)
    rows: list[dict[str, Any]] = []
    for s, kri_of in zip(made.sites, lights, strict=True):
        hoped = None if kri_of is None else kri_of[0]
        rows.append(
            {
                "site_id": s.site_id,
                "enrolled": s.enrolled,
                "target": s.target,
                "days_open": round(s.exposure_days),
                "rate_per_30_days": round(s.rate_per_30_days, 3),
                "forecast": forecast_interval(now, s.days),
                "expected_to_date": None if hoped is None else {
                    "median": hoped.median, "lower": hoped.lower, "upper": hoped.upper,
                    "lower_quartile": hoped.quartile,
                },
                "below_forecast": None if kri_of is None else str(kri_of[1]),
            }
        )  # fmt: skip
    return {
        **base,
        "below_forecast": _worst([r["below_forecast"] for r in rows]),
        "model": {
            "kind": "poisson-gamma",
            "alpha": round(made.fit.alpha, 4),
            "beta_days": round(made.fit.beta, 4),
            "mean_rate_per_30_days": round(30 * made.fit.mean_rate, 4),
        },
        "forecast": forecast_interval(now, made.days),
        "reached": made.days is None,
        "sites": rows,
    }


CSV_COLUMNS = (
    "scope", "site_id", "enrolled", "target", "rate_per_30_days", "expected", "lower", "upper",
    "level", "expected_to_date", "expected_to_date_lower", "below_forecast",
)  # fmt: skip


def forecast_rows(result: dict[str, Any]) -> list[list[Any]]:
    """The forecast as rows for a spreadsheet: the study first, then each site."""

    def row(scope: str, site: str, part: dict[str, Any], rate: Any) -> list[Any]:
        f = part.get("forecast") or {}
        hoped = part.get("expected_to_date") or {}
        return [
            scope, site, part.get("enrolled"), part.get("target"), rate,
            f.get("expected", ""), f.get("lower", ""), f.get("upper", ""), result["level"],
            hoped.get("median", ""), hoped.get("lower", ""), part.get("below_forecast", ""),
        ]  # fmt: skip

    model = result.get("model") or {}
    rows = [row("study", "", result, model.get("mean_rate_per_30_days", ""))]
    rows += [row("site", s["site_id"], s, s["rate_per_30_days"]) for s in result["sites"]]
    rows += [row("site", s["site_id"], s, "") for s in result["sites_not_open"]]
    return rows


def within(result: dict[str, Any], scope: frozenset[str] | None) -> dict[str, Any]:
    """A study's forecast as a caller of some sites sees it: their sites only (the study's
    figures stay, as on the forecast route), the study's light the worst of theirs."""
    if scope is None:
        return result
    sites = [s for s in result["sites"] if s["site_id"] in scope]
    later = [s for s in result["sites_not_open"] if s["site_id"] in scope]
    light = _worst([s["below_forecast"] for s in sites])
    narrowed = {**result, "sites": sites, "sites_not_open": later, "below_forecast": light}
    if "early_warning" in result:
        early_warning.restudy(narrowed)
    return narrowed


def _worst(lights: list[str | None]) -> str | None:
    """The worst light of the sites that have one (None: none has)."""
    known = [kri.Light(x) for x in lights if x is not None]
    return str(kri.worst(known)) if known else None


async def portfolio(
    pool: asyncpg.Pool,
    studies: StudyRegistry,
    by: Principal,
    now: datetime,
    level: float,
    draws: int,
    limits: Limits,
    only: str | None = None,
) -> list[dict[str, Any]]:
    """Every study of the caller's with an enrollment target (or only the one named): its
    forecast and KRIs (below forecast, and the early-warning lights of decision 0090), at
    the sites the caller sees."""
    made_all = []
    for study in sorted(studies.definitions(), key=lambda d: d.study_id):
        if only is not None and study.study_id != only:
            continue
        if study.enrollment is None or not by.allows(Action.READ_AGGREGATES, study.study_id):
            continue
        made_all.append(await study_forecast(pool, study, now, level, draws))
    await early_warning.light(pool, made_all, now, limits)
    return [within(made, by.sites(made["study_id"])) for made in made_all]


PORTFOLIO_COLUMNS = ("study_id", *CSV_COLUMNS, *early_warning.CSV_COLUMNS)


def portfolio_rows(studies: list[dict[str, Any]]) -> list[list[Any]]:
    """Per study, its row and its sites' (as forecast_rows), with the early-warning lights."""
    out = []
    for s in studies:
        parts = [s, *s["sites"], *s["sites_not_open"]]
        for row, part in zip(forecast_rows(s), parts, strict=True):
            out.append([s["study_id"], *row, *early_warning.csv_cells(part)])
    return out

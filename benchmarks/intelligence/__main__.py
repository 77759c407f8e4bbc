"""`python -m benchmarks.intelligence`: the pre-screening goal of issue 19 (100,000
candidate bundles against 20 studies in under 60 s), the screen-failure model against the
rules-only baseline, and the enrollment forecast's backtest.

    python -m benchmarks.intelligence [--candidates 100000] [--studies 20] [--seed 19]
                                      [--backtest-studies 300] [--json out.json]

Matching is timed stage by stage, as the service runs it on an upload: NDJSON bundles
parsed and validated (pydantic), minimised (identifying fields dropped), the batch turned
into feature arrays once, every study's criteria evaluated as columnar checks, risk scored;
then, separately, the per-criterion explanations for the candidates worth a coordinator's
look (eligible or needs review), which is what is stored and listed. Generating the
bundles is not timed; the garbage collector is set as in a service process.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from datetime import date
from typing import Any

import numpy as np
from intelligence.domain import criteria as rules
from intelligence.domain import forecast, matching, risk
from intelligence.domain.fhir import minimise
from intelligence.service import parse_bundles
from trialstream.runtime import GC_THRESHOLDS

from benchmarks.intelligence.bundles import bundle, studies


def matching_benchmark(candidates: int, study_count: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    lines = [json.dumps(bundle(rng, i)).encode() for i in range(candidates)]
    targets = studies(study_count, seed)
    model = risk.train()
    times: dict[str, float] = {}
    # as in a service process (trialstream.runtime.running, decision 0061): what lives as
    # long as the process frozen, young collections every 50,000 allocations
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

    def timed(name: str, start: float) -> float:
        now = time.perf_counter()
        times[name] = round(now - start, 3)
        return now

    t = t0 = time.perf_counter()
    parsed = parse_bundles(lines, "lines")
    t = timed("parse_and_validate", t)
    records = [minimise(b, date(2026, 11, 1)) for b in parsed]
    t = timed("minimise", t)
    batch = matching.evaluate(records, targets, model, {})
    t = timed("features_criteria_and_risk", t)
    total = time.perf_counter() - t0
    kept = 0
    for (_, eligibility), ev in zip(targets, batch.evaluations, strict=True):
        for row in np.flatnonzero(ev.decision != rules.INELIGIBLE):
            rules.explain(eligibility, ev, int(row))
            kept += 1
    timed("explanations_of_kept", t)
    decided = np.concatenate([ev.decision for ev in batch.evaluations])
    return {
        "candidates": candidates,
        "studies": study_count,
        "pairs": int(decided.size),
        "seconds": times,
        "seconds_to_decisions": round(total, 3),
        "bundles_per_second": round(candidates / total),
        "decisions": {
            name: int((decided == code).sum()) for code, name in enumerate(rules.DECISION)
        },
        "explained_pairs": kept,
    }


def model_report() -> dict[str, Any]:
    model = risk.train()
    return {
        "version": model.version,
        "auc": round(model.auc, 3),
        "baseline_auc": round(model.baseline_auc, 3),
        "brier": round(model.calibration.brier, 4),
        "baseline_brier": round(model.baseline_calibration.brier, 4),
        "ece": round(model.calibration.expected_calibration_error, 4),
        "baseline_ece": round(model.baseline_calibration.expected_calibration_error, 4),
        "bins": model.calibration.bins,
    }


def backtest_report(studies_n: int, seed: int) -> list[dict[str, Any]]:
    out = []
    for sites in (20, 5):
        for level in (0.8, 0.9):
            b = forecast.backtest(studies=studies_n, sites=sites, level=level, seed=seed)
            out.append(
                {
                    "sites": sites,
                    "level": level,
                    "studies": b.studies,
                    "coverage": round(b.coverage, 3),
                    "median_relative_error": round(b.median_relative_error, 3),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--backtest-studies", type=int, default=300)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    report = {
        "matching": matching_benchmark(args.candidates, args.studies, args.seed),
        "screen_failure_model": model_report(),
        "forecast_backtest": backtest_report(args.backtest_studies, args.seed),
    }
    m = report["matching"]
    print(f"## Matching: {m['candidates']:,} bundles x {m['studies']} studies")
    for stage, seconds in m["seconds"].items():
        print(f"- {stage}: {seconds} s")
    print(f"- to decisions: {m['seconds_to_decisions']} s ({m['bundles_per_second']:,} bundles/s)")
    print(f"- decisions: {m['decisions']}; explained pairs: {m['explained_pairs']:,}")
    r = report["screen_failure_model"]
    print(f"## Screen-failure model {r['version']} (held out)")
    print("| | AUC | Brier | ECE |\n|---|---|---|---|")
    print(f"| model | {r['auc']} | {r['brier']} | {r['ece']} |")
    print(f"| rules only | {r['baseline_auc']} | {r['baseline_brier']} | {r['baseline_ece']} |")
    print("## Forecast backtest (interval coverage of the true time to target)")
    print("| sites | nominal | coverage | median relative error | studies |")
    print("|---|---|---|---|---|")
    for b in report["forecast_backtest"]:
        print(
            f"| {b['sites']} | {b['level']} | {b['coverage']} | {b['median_relative_error']} |"
            f" {b['studies']} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()

"""Champion/challenger decisions: how often a truly better retrain is promoted and an equal
one rejected.

Simulates windows of ``--n`` recent labelled rows (``workers/deployment/challenger_simulation.py``,
the code the unit test runs small) and decides each through the real
``challenger.decide`` at alpha ``--alpha``, minimum improvement 0:

* **binary**, ROC AUC by the paired DeLong test: challenger truly better (AUC ≈ 0.75 ->
  0.80) must be promoted, an equal one (both ≈ 0.75) rejected;
* **regression**, RMSE by the paired bootstrap (1,000 resamples): truly better (RMSE 1.25
  -> 1.125, ratio 0.90) promoted, equal (both 1.25) rejected.

``--runs`` windows per scenario; target >= 90% right verdicts in each. Also times one
paired bootstrap of 20,000 rows x 1,000 resamples. No services needed. Run from the
repository root::

    .venv/bin/python -m benchmarks.challenger_simulation [--runs 2000 --n 2000 --seed 1]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine, load_average, package_versions, report_header
from workers.deployment.challenger import paired_bootstrap
from workers.deployment.challenger_simulation import (
    SCENARIOS,
    SIGMA_BINARY,
    SIGMA_REGRESSION,
    Summary,
    simulate,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.90


def table(summaries: list[Summary]) -> list[str]:
    lines = [
        "| scenario | right verdict | runs | rate [95% Wilson] | baseline: promote if better "
        "on the point estimate | mean champion -> challenger | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        metric = "AUC" if s.scenario.startswith("binary") else "RMSE"
        met = "MET" if s.rate >= TARGET else "MISSED"
        lines.append(
            f"| {s.scenario} | {s.verdict} | {s.runs:,} | {s.rate:.2%} "
            f"[{s.wilson_low:.2%}, {s.wilson_high:.2%}] ({s.hits:,}) | {s.naive_rate:.2%} | "
            f"{metric} "
            f"{s.champion:.3f} -> {s.challenger:.3f} | >= {TARGET:.0%}: {met} |"
        )
    return lines


def bootstrap_seconds(n: int = 20_000, resamples: int = 1000) -> float:
    rng = np.random.default_rng(0)
    y = rng.standard_normal(n)
    began = time.perf_counter()
    paired_bootstrap(y, y + rng.standard_normal(n), y + rng.standard_normal(n), "rmse",
                     n_resamples=resamples)  # fmt: skip
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="windows per scenario")
    parser.add_argument("--n", type=int, default=2000, help="labelled rows per window")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    command = shlex.join(
        [sys.executable, "-m", "benchmarks.challenger_simulation"]
        + (argv if argv is not None else sys.argv[1:])
    )
    machine = describe_machine(ROOT, package_versions(["numpy", "scipy"]))
    load_before, started = load_average(), datetime.now(UTC)
    began = time.perf_counter()
    summaries = [
        simulate(name, args.runs, args.n, args.seed + offset, alpha=args.alpha)
        for offset, name in enumerate(SCENARIOS)
    ]
    elapsed = time.perf_counter() - began
    seconds = bootstrap_seconds()

    lines = report_header(started, command, machine, load_before, load_average())
    lines += [
        "",
        f"{args.runs:,} windows of {args.n:,} labelled rows per scenario; alpha {args.alpha:g}, "
        f"min improvement 0; noise sd champion/challenger: binary {SIGMA_BINARY['champion']}/"
        f"{SIGMA_BINARY['challenger']} (base rate 0.20), regression "
        f"{SIGMA_REGRESSION['champion']}/{SIGMA_REGRESSION['challenger']} (noise sd 1); "
        f"seed {args.seed}; {elapsed:.1f} s.",
        "",
        *table(summaries),
        "",
        f"One paired bootstrap, 20,000 rows x 1,000 resamples (RMSE): {seconds:.2f} s.",
    ]
    all_met = all(s.rate >= TARGET for s in summaries)
    lines.append(f"Targets (>= {TARGET:.0%} right verdicts): {'MET' if all_met else 'MISSED'}.")
    print("\n".join(lines))
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())

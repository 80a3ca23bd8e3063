"""Canary rollouts on simulated traffic: how often a worse canary is caught, a good one kept.

Drives the real ``workers.deployment.rollouts.start`` / ``evaluate`` (guardrails, mSPRT)
through ``workers.deployment.canary_simulation``: each tick ``--requests`` (default 400)
requests split by the canary's share, every request labelled (accuracy), the same score
distribution, latency and no errors on both arms; the default canary config without the
minimum step duration. Two scenarios of ``--runs`` (default 1,000) rollouts each:

* **worse canary**: accuracy ``--p-worse`` (0.70) against ``--p-stable`` (0.80); target:
  rolled back before the 50% step in >= 95% of runs;
* **equal canary**: ``--p-stable`` on both arms; target: promoted (reaches 100%) in >= 90%.

Prints a markdown table with 95% Wilson intervals and, for rollbacks, the median step and
tick. Run from the repository root::

    .venv/bin/python -m benchmarks.canary_simulation [--runs 1000] [--seed 20261126]
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.machine import (
    describe_machine,
    load_average,
    package_versions,
    report_header,
)
from workers.deployment.canary_simulation import CanarySummary, simulate_canary

ROOT = Path(__file__).resolve().parent.parent
WORSE_TARGET = 0.95
EQUAL_TARGET = 0.90
Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _median(values: list[float]) -> str:
    return f"{float(np.median(values)):g}" if values else "-"


def row(name: str, target: float, hits: int, summary: CanarySummary, wall_s: float) -> str:
    n = len(summary.runs)
    low, high = wilson(hits, n)
    rollbacks = summary.rollbacks()
    steps = [float(run.step + 1) for run in rollbacks]
    shares = [run.share for run in rollbacks]
    ticks = [float(run.ticks) for run in rollbacks]
    verdict = "MET" if hits / n >= target else "MISSED"
    cells = [
        name,
        str(n),
        f">= {target:.0%}",
        f"{hits / n:.1%}",
        f"[{low:.1%}, {high:.1%}]",
        verdict,
        str(summary.count("promoted")),
        str(summary.count("rolled_back")),
        str(summary.count("unfinished")),
        f"{_median(steps)} ({_median([s * 100 for s in shares])}%)",
        _median(ticks),
        f"{wall_s:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="rollouts per scenario")
    parser.add_argument("--requests", type=int, default=400, help="requests per tick")
    parser.add_argument("--p-stable", type=float, default=0.80)
    parser.add_argument("--p-worse", type=float, default=0.70)
    parser.add_argument("--max-ticks", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    command = shlex.join(
        [".venv/bin/python", "-m", "benchmarks.canary_simulation"]
        + (argv if argv is not None else sys.argv[1:])
    )
    machine = describe_machine(ROOT, package_versions(["numpy", "pydantic"]))
    load_before = load_average()
    rng = np.random.default_rng(args.seed)
    sizes = {"requests_per_tick": args.requests, "max_ticks": args.max_ticks}

    began = time.perf_counter()
    worse = simulate_canary(rng, args.runs, p_stable=args.p_stable, p_canary=args.p_worse, **sizes)
    worse_s = time.perf_counter() - began
    began = time.perf_counter()
    equal = simulate_canary(rng, args.runs, p_stable=args.p_stable, p_canary=args.p_stable, **sizes)
    equal_s = time.perf_counter() - began

    lines = report_header(started, command, machine, load_before, load_average())
    lines += [
        "",
        f"{args.requests} requests per tick, seed {args.seed}, default canary config "
        "(steps 5/25/50/100%, 500 canary predictions per step, guardrail alpha 0.05, "
        "max metric drop 0.01), no minimum step duration.",
        "",
        "| scenario | runs | target | rate | 95% Wilson | verdict | promoted | rolled back "
        "| unfinished | median step at rollback (1-based, share) | median ticks at rollback "
        "| wall s |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
        row(
            f"canary {args.p_worse:g} vs stable {args.p_stable:g}: rolled back before 50%",
            WORSE_TARGET,
            worse.rolled_back_below(0.5),
            worse,
            worse_s,
        ),
        row(
            f"canary {args.p_stable:g} vs stable {args.p_stable:g}: promoted",
            EQUAL_TARGET,
            equal.count("promoted"),
            equal,
            equal_s,
        ),
    ]
    breaches: dict[str, int] = {}
    for run in equal.rollbacks():
        for name in run.breached:
            breaches[name] = breaches.get(name, 0) + 1
    if breaches:
        listed = ", ".join(f"{name} {count}" for name, count in sorted(breaches.items()))
        lines += ["", f"Guardrails that rolled back an equal canary: {listed}."]
    print("\n".join(lines))
    met = (
        worse.rolled_back_below(0.5) >= WORSE_TARGET * args.runs
        and equal.count("promoted") >= EQUAL_TARGET * args.runs
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

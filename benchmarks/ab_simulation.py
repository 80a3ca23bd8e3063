"""A/B test decisions on every tick: false promotions and power of the mSPRT vs a naive z-test.

Simulates conversion A/B tests (``workers/deployment/ab_simulation.py``, the code the unit
test runs small): ``--tick`` outcomes per arm per scheduler tick up to ``--max-per-arm``,
decided on every tick from ``--min-samples`` outcomes per arm, alpha ``--alpha``, minimum
effect ``--min-effect``, stopping at the first promote or reject:

* **A/A** (both arms ``--base`` conversion), ``--aa`` experiments: the false promotion
  rate, with its 95% Wilson interval; target <= alpha;
* **power**, ``--base`` -> ``--lift`` conversion, ``--power`` experiments: the share
  promoted within ``--max-per-arm`` outcomes per arm, and the median outcomes per arm at
  promotion; target >= 80%.

Decided three ways on the same simulated counts: ours (``sequential.ab_decision``, the
mSPRT), the baseline the product issue implies (a fixed-sample two-proportion z-test re-run
on every tick: p < alpha and lift >= min effect promotes), and that z-test looked at once,
at ``--max-per-arm`` (valid, but it cannot stop early). No services needed. Run from the
repository root::

    .venv/bin/python -m benchmarks.ab_simulation [--aa 2000 --power 2000 --seed 1]
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
from workers.deployment.ab_simulation import (
    Counts,
    Summary,
    run_naive,
    run_sequential,
    simulate_counts,
)

ROOT = Path(__file__).resolve().parent.parent
POWER_TARGET = 0.80


def decide_all(counts: Counts, args: argparse.Namespace) -> list[Summary]:
    rule = {"alpha": args.alpha, "min_effect": args.min_effect, "min_samples": args.min_samples}
    return [
        run_sequential(counts, **rule),
        run_naive(counts, **rule),
        run_naive(counts, **rule, every_tick=False),
    ]


def percent(summary: Summary) -> str:
    low, high = summary.promote_interval
    return f"{summary.promote_rate:.2%} [{low:.2%}, {high:.2%}] ({summary.promoted})"


def table(aa: list[Summary], power: list[Summary]) -> list[str]:
    lines = [
        "| decision rule | A/A false promotions [95% Wilson] (n) "
        "| power: promoted [95% Wilson] (n) | median outcomes per arm to promote |",
        "|---|---|---|---|",
    ]
    for null, alt in zip(aa, power, strict=True):
        median = "-" if alt.median_n_to_promote is None else f"{alt.median_n_to_promote:,.0f}"
        lines.append(f"| {null.method} | {percent(null)} | {percent(alt)} | {median} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa", type=int, default=2000, help="A/A experiments")
    parser.add_argument("--power", type=int, default=2000, help="experiments with a lift")
    parser.add_argument("--base", type=float, default=0.10, help="control conversion")
    parser.add_argument("--lift", type=float, default=0.12, help="challenger conversion")
    parser.add_argument("--tick", type=int, default=500, help="outcomes per arm per tick")
    parser.add_argument("--max-per-arm", type=int, default=10_000)
    parser.add_argument("--min-samples", type=int, default=1000)
    parser.add_argument("--min-effect", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    command = shlex.join(
        [sys.executable, "-m", "benchmarks.ab_simulation"]
        + (argv if argv is not None else sys.argv[1:])
    )
    machine = describe_machine(ROOT, package_versions(["numpy", "scipy"]))
    load_before, started = load_average(), datetime.now(UTC)
    began = time.perf_counter()

    rng = np.random.default_rng(args.seed)
    ticks = {"tick": args.tick, "max_per_arm": args.max_per_arm}
    null = simulate_counts(
        rng, p_control=args.base, p_challenger=args.base, experiments=args.aa, **ticks
    )
    alternative = simulate_counts(
        rng, p_control=args.base, p_challenger=args.lift, experiments=args.power, **ticks
    )
    aa, power = decide_all(null, args), decide_all(alternative, args)
    elapsed = time.perf_counter() - began

    lines = report_header(started, command, machine, load_before, load_average())
    lines += [
        "",
        f"Ticks of {args.tick:,} outcomes per arm up to {args.max_per_arm:,} "
        f"({null.n.size} ticks), decisions from {args.min_samples:,} per arm; alpha "
        f"{args.alpha:g}, min effect {args.min_effect:g}; A/A at {args.base:.0%} "
        f"({args.aa:,} experiments), power at {args.base:.0%} -> {args.lift:.0%} "
        f"({args.power:,} experiments); seed {args.seed}; {elapsed:.1f} s.",
        "",
        *table(aa, power),
        "",
    ]
    ours_aa, ours_power = aa[0], power[0]
    fpr_ok = ours_aa.promote_rate <= args.alpha
    power_ok = ours_power.promote_rate >= POWER_TARGET
    lines.append(
        f"Targets: false promotions <= {args.alpha:.0%}: {'MET' if fpr_ok else 'MISSED'} "
        f"(upper 95% bound {ours_aa.promote_interval[1]:.2%}); power >= {POWER_TARGET:.0%}: "
        f"{'MET' if power_ok else 'MISSED'}."
    )
    print("\n".join(lines))
    return 0 if fpr_ok and power_ok else 1


if __name__ == "__main__":
    sys.exit(main())

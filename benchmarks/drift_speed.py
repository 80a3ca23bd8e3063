"""Drift statistics speed against a scipy loop, and the detector's calibration.

Speed: seeded data in memory, a reference and a current window of ``--rows`` rows each
(default: 100,000 and 1,000,000), 50 numeric columns (normal, log-normal, Poisson counts,
a mostly -1 "days since" column, uniform) and 10 categorical ones (pandas ``str``, as
parquet reads them; 3 to 200 levels), 10 of them drifted (8 numeric, 2 categorical).
In the same run:

* **ours**: ``data_drift(reference, current)`` (sorting, binning and counting the
  reference included), and ``data_drift(prepared, current)`` with the reference prepared
  once by ``prepare_reference`` (what a monitoring worker caches), best of ``--repeat``;
* **scipy loop**: per numeric column ``scipy.stats.ks_2samp`` + ``psi.psi`` ("core", the
  issue's baseline) and ``scipy.stats.wasserstein_distance`` (the effect size we also
  compute); per categorical ``value_counts`` + ``scipy.stats.chi2_contingency`` +
  ``jensenshannon``; one pass.

It prints both times and their ratio, the largest |difference| of p-values and statistics
against scipy, the columns flagged (expected: exactly the 10 drifted) and the peak memory
of each phase (VmHWM above the RSS before it). Target (issue #10): the prepared check at
1M x 1M rows x 60 columns in <= 1.5 s on the 2-core machine.

Calibration (``workers.monitoring.drift_simulation``): a 10,000-row x 30-feature
reference per seed, ``--seeds`` (20) x ``--windows`` (200) no-drift windows of 2,000 rows:
the dataset-level false alarm rate with its Wilson interval; and the power for a 0.3 sigma
mean shift of one feature and for 5-point shifts of one categorical level's share (a 1%
and a 25% level, at the default JS threshold and at js=0.03).

Run from the repository root::

    .venv/bin/python -m benchmarks.drift_speed [--rows 100000 1000000] [--seeds 20]
"""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from benchmarks.machine import (
    describe_machine,
    load_average,
    package_versions,
    reset_peak,
    status_kib,
)
from workers.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    DataDrift,
    DriftThresholds,
    data_drift,
    prepare_reference,
)
from workers.monitoring.drift_simulation import Population, Rate, alarm_rate
from workers.monitoring.psi import psi

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 1.5
N_NUMERIC = 50
N_CATEGORICAL = 10
SHAPES = ("normal", "lognormal", "poisson", "days_since", "uniform")
LEVELS = (3, 5, 8, 12, 20, 30, 50, 80, 120, 200)
DRIFTED_NUMERIC = (0, 6, 12, 18, 24, 31, 37, 43)  # 8 columns across the shapes
DRIFTED_CATEGORICAL = (1, 5)


def numeric_column(rng: np.random.Generator, shape: str, n: int, drift: bool) -> np.ndarray:
    """A column of one shape; ``drift`` moves it clearly (about 0.5 sigma or a 1.5x scale)."""
    if shape == "normal":
        return rng.normal(0.5 if drift else 0.0, 1.0, n)
    if shape == "lognormal":
        return rng.lognormal(0.0, 1.5 if drift else 1.0, n)
    if shape == "poisson":
        return rng.poisson(4.0 if drift else 3.0, n).astype(np.float64)
    if shape == "days_since":
        never = rng.random(n) < (0.7 if drift else 0.85)
        return np.where(never, -1.0, rng.integers(1, 400, n).astype(np.float64))
    return rng.uniform(0.2 if drift else 0.0, 1.2 if drift else 1.0, n)


def category_column(rng: np.random.Generator, levels: int, n: int, drift: bool) -> pd.Series:
    """Zipf-like level shares; ``drift`` moves 15 points of share to the second level."""
    shares = 1.0 / np.arange(1, levels + 1)
    shares /= shares.sum()
    if drift:
        shares = shares * 0.85
        shares[1] += 0.15
    names = np.array([f"v{k:03d}" for k in range(levels)])
    return pd.Series(names[rng.choice(levels, n, p=shares)], dtype="str")


def make_frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """(reference, current, names of the drifted columns)."""
    rng = np.random.default_rng(seed)
    reference: dict[str, Any] = {}
    current: dict[str, Any] = {}
    drifted: set[str] = set()
    for i in range(N_NUMERIC):
        shape = SHAPES[i % len(SHAPES)]
        name = f"num{i:02d}_{shape}"
        reference[name] = numeric_column(rng, shape, rows, False)
        current[name] = numeric_column(rng, shape, rows, i in DRIFTED_NUMERIC)
        if i in DRIFTED_NUMERIC:
            drifted.add(name)
    for i in range(N_CATEGORICAL):
        name = f"cat{i}_{LEVELS[i]}"
        reference[name] = category_column(rng, LEVELS[i], rows, False)
        current[name] = category_column(rng, LEVELS[i], rows, i in DRIFTED_CATEGORICAL)
        if i in DRIFTED_CATEGORICAL:
            drifted.add(name)
    # Some missing values, as real columns have.
    for frame in (reference, current):
        frame["num01_lognormal"][rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(reference), pd.DataFrame(current), drifted


def _levels(name: str) -> int:
    """Number of levels of a categorical column, from its name (cat<i>_<levels>)."""
    return int(name.rsplit("_", 1)[1])


def scipy_loop(
    reference: pd.DataFrame, current: pd.DataFrame, wasserstein: bool
) -> dict[str, tuple[float, float]]:
    """(statistic, p-value) per column from scipy, as a per-column loop would do it."""
    out: dict[str, tuple[float, float]] = {}
    for name in reference.columns:
        ref, cur = reference[name], current[name]
        if pd.api.types.is_numeric_dtype(ref.dtype):
            a = ref.to_numpy()
            b = cur.to_numpy()
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            result = stats.ks_2samp(a, b)
            psi(a, b)
            if wasserstein:
                stats.wasserstein_distance(a, b)
            out[name] = (float(result.statistic), float(result.pvalue))
        else:
            table = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0)
            chi = stats.chi2_contingency(table.to_numpy().T)
            shares = table.to_numpy() / table.to_numpy().sum(axis=0)
            jensenshannon(shares[:, 0], shares[:, 1], base=2)
            out[name] = (float(chi.statistic), float(chi.pvalue))
    return out


def timed(call: Callable[[], Any]) -> tuple[float, float, int, Any, int]:
    """(wall s, cpu s, peak RSS above the start in MiB, result, peak RSS in MiB) of one
    call. The allocator keeps freed memory, so a phase that reuses it shows +0."""
    gc.collect()
    reset_peak()
    rss_before = status_kib("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    high = status_kib("VmHWM")
    return wall, cpu, max(0, high - rss_before) // 1024, result, high // 1024


def speed(rows: int, repeat: int, seed: int) -> bool:
    print(f"\n## {rows:,} rows x {N_NUMERIC} numeric + {N_CATEGORICAL} categorical columns")
    reference, current, drifted = make_frames(rows, seed)
    print(f"data: {reference.memory_usage(deep=True).sum() / 2**20:.0f} MiB per frame")

    full = min(
        (timed(lambda: data_drift(reference, current)) for _ in range(repeat)), key=lambda t: t[0]
    )
    prep = timed(lambda: prepare_reference(reference))
    prepared = prep[3]
    checks = [timed(lambda: data_drift(prepared, current)) for _ in range(repeat)]
    check = min(checks, key=lambda t: t[0])
    single = min(
        (timed(lambda: data_drift(prepared, current, workers=1)) for _ in range(repeat)),
        key=lambda t: t[0],
    )
    core = timed(lambda: scipy_loop(reference, current, wasserstein=False))
    with_w = timed(lambda: scipy_loop(reference, current, wasserstein=True))

    ours: DataDrift = check[3]
    assert ours.to_json() == full[3].to_json()
    baseline: dict[str, tuple[float, float]] = core[3]
    by_name = {f.name: f for f in ours.features}
    # Categoricals with more than max_levels levels are compared on another table (top
    # levels + "other"), so only the uncapped ones have scipy's full-table numbers.
    cap = DEFAULT_THRESHOLDS.max_levels
    same = {n: v for n, v in baseline.items() if n.startswith("num") or _levels(n) <= cap}
    dp = max(abs((by_name[n].p_value or 0.0) - p) for n, (_, p) in same.items())
    dp_rel = max(abs((by_name[n].p_value or 0.0) - p) / p for n, (_, p) in same.items() if p > 0)
    ds = max(abs((by_name[n].statistic or 0.0) - s) for n, (s, _) in same.items())
    flagged = {f.name for f in ours.features if f.drifted}

    def line(label: str, t: tuple[float, float, int, Any, int]) -> str:
        return f"{label:<44} {t[0]:7.3f} s  cpu {t[1]:7.3f} s  peak RSS {t[4]:5d} MiB (+{t[2]:4d})"

    print(line("ours data_drift(reference frame, current)", full))
    print(line("ours prepare_reference (once, cacheable)", prep))
    print(line(f"ours data_drift(prepared, current) best of {repeat}", check))
    print(line(f"  the same on one thread (workers=1) best of {repeat}", single))
    print(line("scipy loop: ks_2samp + chi2 + PSI", core))
    print(line("scipy loop: + wasserstein_distance + JS", with_w))
    print(
        f"ratio scipy core / ours: full {core[0] / full[0]:.1f}x, "
        f"prepared {core[0] / check[0]:.1f}x; "
        f"scipy with Wasserstein / ours: full {with_w[0] / full[0]:.1f}x, "
        f"prepared {with_w[0] / check[0]:.1f}x"
    )
    print(
        f"against scipy on {len(same)} columns (all numeric, categoricals with <= {cap} "
        f"levels): max |p - scipy p| = {dp:.3g} (relative {dp_rel:.3g}); "
        f"max |statistic - scipy| = {ds:.3g}"
    )
    exact = flagged == drifted
    print(
        f"flagged {len(flagged)}: {sorted(flagged)}; expected the {len(drifted)} drifted: "
        f"{'EXACTLY' if exact else 'MISMATCH'}"
        + (
            ""
            if exact
            else f" (missed {sorted(drifted - flagged)}, extra {sorted(flagged - drifted)})"
        )
    )
    met = check[0] <= TARGET_S
    if rows >= 1_000_000:
        print(
            f"target <= {TARGET_S} s (prepared check, 1M x 1M): {'MET' if met else 'MISSED'}; "
            f"full (reference prepared in the call): {'MET' if full[0] <= TARGET_S else 'MISSED'}"
        )
    return exact and (met or rows < 1_000_000)


def calibration(seeds: int, windows: int, power_windows: int) -> None:
    print(
        f"\n## Calibration: {seeds} seeds x {windows} no-drift windows of 2,000 rows "
        "(reference 10,000 rows x 30 features per seed)"
    )
    started = time.perf_counter()

    def pooled(
        population: Population,
        per_seed: int,
        feature: str | None,
        thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
        salt: int = 0,
    ) -> Rate:
        hits = trials = 0
        for seed in range(seeds):
            rng = np.random.default_rng([seed, salt])
            reference = prepare_reference(Population().sample(rng, 10_000))
            rate = alarm_rate(
                reference,
                population,
                rng,
                windows=per_seed,
                window_rows=2_000,
                thresholds=thresholds,
                feature=feature,
            )
            hits += rate.hits
            trials += rate.trials
        return Rate(hits, trials)

    far = pooled(Population(), windows, None)
    print(
        f"dataset-level false alarm rate: {far}  target <= 0.05: "
        f"{'MET' if far.rate <= 0.05 else 'MISSED'}"
    )
    print(f"(power: {seeds} seeds x {power_windows} windows each)")
    cases = [
        (
            "0.3 sigma mean shift, normal feature",
            Population(shifted_numeric="n00_normal", shift_sigmas=0.3),
            "n00_normal",
            DriftThresholds(),
        ),
        (
            "0.3 sigma mean shift, days-since feature",
            Population(shifted_numeric="n03_days_since", shift_sigmas=0.3),
            "n03_days_since",
            DriftThresholds(),
        ),
        (
            "5-point share shift, 1% level (js 0.1)",
            Population(shifted_category=("c02", "c02_L10"), share_points=0.05),
            "c02",
            DriftThresholds(),
        ),
        (
            "5-point share shift, 25% level (js 0.1)",
            Population(shifted_category=("c02", "c02_L0"), share_points=0.05),
            "c02",
            DriftThresholds(),
        ),
        (
            "5-point share shift, 25% level (js 0.03)",
            Population(shifted_category=("c02", "c02_L0"), share_points=0.05),
            "c02",
            DriftThresholds(js=0.03),
        ),
        (
            "5-point share shift, 30% level of 2 (js 0.1)",
            Population(shifted_category=("c03", "c03_L1"), share_points=0.05),
            "c03",
            DriftThresholds(),
        ),
        (
            "5-point share shift, 30% level of 2 (js 0.03)",
            Population(shifted_category=("c03", "c03_L1"), share_points=0.05),
            "c03",
            DriftThresholds(js=0.03),
        ),
    ]
    for k, (label, population, feature, thresholds) in enumerate(cases, start=1):
        rate = pooled(population, power_windows, feature, thresholds, salt=k)
        print(f"power, {label}: {rate}  target >= 0.9: {'MET' if rate.rate >= 0.9 else 'MISSED'}")
    far_js = pooled(Population(), windows // 4, None, DriftThresholds(js=0.03), salt=99)
    print(f"false alarm rate with js=0.03 ({windows // 4} windows per seed): {far_js}")
    print(f"calibration took {time.perf_counter() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--power-windows", type=int, default=25)
    parser.add_argument("--no-calibration", action="store_true")
    args = parser.parse_args(argv)

    print(
        "command:",
        shlex.join(
            [sys.executable, "-m", "benchmarks.drift_speed"]
            + (argv if argv is not None else sys.argv[1:])
        ),
    )
    machine = describe_machine(ROOT, package_versions(["numpy", "scipy", "pandas", "numba"]))
    print("machine:", "; ".join(f"{k} {v}" for k, v in machine.items()))
    print("load average before:", load_average())

    began = time.perf_counter()
    small_ref, small_cur, _ = make_frames(2_000, 0)
    data_drift(small_ref, small_cur)
    print(f"warm-up (numba kernels loaded or compiled): {time.perf_counter() - began:.2f} s")

    ok = all([speed(rows, args.repeat, args.seed) for rows in args.rows])
    if not args.no_calibration:
        calibration(args.seeds, args.windows, args.power_windows)
    print("\nload average after:", load_average())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

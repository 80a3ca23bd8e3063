"""Feature engine: per-event features (``event_features``) on a synthetic event log, next to a
straightforward pandas implementation; and per-customer features at monthly cutoffs.

Generates, with a fixed seed, a raw event log of ``--events`` rows over ``--customers``
customers (default 10,000,000 / 200,000): customer activity lognormal (σ = 1, so a few
customers are much busier than the median), times uniform over two years (2022-01-01 to
2023-12-31) at one-second resolution, one value column ``amount`` lognormal (μ = 3, σ = 1).
It builds the prepared event frame directly (what ``prepare_events`` returns: merged by
(customer, ts) with ``amount`` summed and ``n_events`` counted, sorted), and a slice of it for
the baseline: the first customers, whole, up to ``--baseline-events`` events (default 1M).

Features (``SPEC``): lags 1, 7 and 30 of ``amount`` and of the gaps between events, windows
7D / 14D / 30D / 90D (count, sum, mean, std, min, max), days since the previous event and
the event's calendar parts: 44 columns after ``customer_id`` and ``ts``.

Each measured side runs in a fresh child process (``--child``), so that its peak RSS
(``VmHWM``: the process's high-water mark, input included) and its peak growth during the
calls (``VmHWM`` reset through ``/proc/self/clear_refs`` before the first call, minus the RSS
before it) are its own. A child reads the prepared frame from an uncompressed parquet
file, runs its side ``--repeats`` times (dropping each result) and reports wall and CPU time
per run:

* **ours**: ``event_features(frame, SPEC)`` on the full log, and again on the slice;
* **pandas**: the straightforward implementation (``pandas_features``): per-customer
  ``groupby().shift()`` / ``diff()`` for gaps and lags, ``groupby().rolling("<n>D", on="ts",
  closed="left")`` and one aggregation call per statistic for each window, ``.dt``
  accessors for the calendar; on the slice only (at 10M it would take minutes);
* **cutoffs**: ``cutoff_aggregates`` (RFM, lags, windows) at 12 monthly cutoffs on the full
  log (the first day of each of the log's last 12 months), when that module exists.

Fresh memory is expensive on this VM (a page touched for the first time costs a few
microseconds of system time: about a second per GB); the report gives the system time and
the first run (which pays the most of it) apart from the median.

Sanity check: ours and pandas must give the same features for 200 customers sampled from the
slice (nulls at the same places, numbers within 1e-9 relative). Exit status: 0; 1 when a
target is missed at the target size; 2 when the two disagree. Run from the repository root::

    .venv/bin/python -m benchmarks.feature_engine [--events 10000000] [--customers 200000] \\
        [--baseline-events 1000000] [--repeats 3] [--output FILE]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from benchmarks.machine import (
    describe_machine,
    load_average,
    package_versions,
    report_header,
    reset_peak,
    status_kib,
)
from workers.preprocessing.features.per_event import event_features, feature_columns
from workers.preprocessing.features.spec import CUSTOMER, N_EVENTS, TS, FeatureSpec

ROOT = Path(__file__).resolve().parent.parent
FEATURE_CODE = ROOT / "workers" / "preprocessing" / "features" / "per_event.py"
SPEC = FeatureSpec(
    value_columns=("amount",),
    lag_periods=(1, 7, 30),
    windows=(("7D", 7), ("14D", 14), ("30D", 30), ("90D", 90)),
    calendar=True,
)
TARGET_EVENTS, TARGET_CUSTOMERS = 10_000_000, 200_000
TARGET_SECONDS, TARGET_PEAK_MIB = 6.0, 3 * 1024  # per-event features: 3 GiB
TARGET_CUTOFF_SECONDS, CUTOFFS = 10.0, 12
START = datetime(2022, 1, 1)
SPAN_SECONDS = 730 * 86_400
SAMPLE_CUSTOMERS = 200
REL_TOL = 1e-9
US_PER_DAY = 86_400_000_000


# ---------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    events: int
    customers: int
    baseline_events: int
    repeats: int
    seed: int
    output: Path | None


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.feature_engine",
        description="Per-event features on a synthetic log vs a straightforward pandas one.",
    )
    parser.add_argument("--events", type=int, default=TARGET_EVENTS, help="raw event rows")
    parser.add_argument("--customers", type=int, default=TARGET_CUSTOMERS, help="customers")
    parser.add_argument(
        "--baseline-events",
        type=int,
        default=1_000_000,
        help="events of the slice both sides run on (default 1,000,000)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument("--seed", type=int, default=20261126, help="generator seed")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    # A measured side, in its own process (used by the benchmark itself).
    parser.add_argument("--child", choices=("ours", "pandas", "cutoffs"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 100 or args.customers < 1 or args.repeats < 1:
        parser.error("--events must be >= 100, --customers >= 1 and --repeats >= 1")
    options = Options(
        events=args.events,
        customers=args.customers,
        baseline_events=args.baseline_events,
        repeats=args.repeats,
        seed=args.seed,
        output=args.output,
    )
    return options, args


# ---------------------------------------------------------------------- the log


def prepared_log(events: int, customers: int, seed: int) -> pl.DataFrame:
    """The prepared event frame of a synthetic raw log (see the module docstring)."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.0, size=customers)
    customer = rng.choice(customers, size=events, p=weights / weights.sum())
    start_us = int(pd.Timestamp(START).value // 1000)
    ts = start_us + rng.integers(0, SPAN_SECONDS, size=events) * 1_000_000
    raw = pl.DataFrame(
        {"code": customer.astype(np.int64), TS: ts, "amount": rng.lognormal(3.0, 1.0, events)}
    )
    del customer, ts
    width = len(str(customers - 1))
    # Zero-padded ids sort like their numbers, so sorting by code sorts by customer_id.
    return (
        raw.group_by("code", TS)
        .agg(pl.col("amount").sum(), pl.len().cast(pl.Int64).alias(N_EVENTS))
        .sort("code", TS)
        .select(
            (pl.lit("C") + pl.col("code").cast(pl.String).str.zfill(width)).alias(CUSTOMER),
            pl.col(TS).cast(pl.Datetime("us")),
            N_EVENTS,
            "amount",
        )
    )


def head_customers(frame: pl.DataFrame, events: int) -> pl.DataFrame:
    """The first customers, whole, with at most ``events`` events (at least one customer)."""
    starts = np.flatnonzero(frame[CUSTOMER].rle_id().diff().fill_null(1).to_numpy())
    ends = np.append(starts[1:], frame.height)
    fits = int(np.searchsorted(ends, events, side="right"))
    return frame.head(int(ends[max(fits, 1) - 1]))


def monthly_cutoffs(frame: pl.DataFrame) -> list[datetime]:
    """The first day of each of the last ``CUTOFFS`` months the log reaches into."""
    last = frame[TS].max()
    assert isinstance(last, datetime)
    month = pd.Timestamp(last.year, last.month, 1)
    return [(month - pd.DateOffset(months=k)).to_pydatetime() for k in range(CUTOFFS - 1, -1, -1)]


# ---------------------------------------------------------------------- pandas baseline


def pandas_features(events: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The same features as ``event_features``, written the straightforward pandas way."""
    df = events.sort_values([CUSTOMER, TS], kind="stable").reset_index(drop=True)
    by_customer = df.groupby(CUSTOMER, sort=False)
    out = pd.DataFrame({CUSTOMER: df[CUSTOMER], TS: df[TS]})
    gap = by_customer[TS].diff().dt.total_seconds() / 86_400
    out["days_since_previous_event"] = gap
    for k in spec.lag_periods:
        out[f"days_between_events__lag_{k}"] = gap.groupby(df[CUSTOMER], sort=False).shift(k)
    for v in spec.value_columns:
        for k in spec.lag_periods:
            out[f"{v}__lag_{k}"] = by_customer[v].shift(k)
    df["one"] = 1.0
    for name, days in spec.windows:
        rolling = by_customer.rolling(f"{days}D", on=TS, closed="left")
        # An empty window is NaN in pandas; ours counts 0 events and sums to 0.
        out[f"events__count__{name}"] = np.nan_to_num(_in_row_order(rolling["one"].sum()))
        for v in spec.value_columns:
            values = rolling[v]
            out[f"{v}__sum__{name}"] = np.nan_to_num(_in_row_order(values.sum()))
            out[f"{v}__mean__{name}"] = _in_row_order(values.mean())
            out[f"{v}__std__{name}"] = _in_row_order(values.std())
            out[f"{v}__min__{name}"] = _in_row_order(values.min())
            out[f"{v}__max__{name}"] = _in_row_order(values.max())
    if spec.calendar:
        ts = df[TS].dt
        month, dayofweek, hour = ts.month, ts.dayofweek, ts.hour
        out["event__year"] = ts.year
        out["event__quarter"] = ts.quarter
        out["event__month"] = month
        out["event__day"] = ts.day
        out["event__dayofweek"] = dayofweek
        out["event__hour"] = hour
        out["event__is_weekend"] = (dayofweek >= 5).astype("int8")
        for part, phase in (
            ("month", (month - 1) / 12),
            ("dayofweek", dayofweek / 7),
            ("hour", hour / 24),
        ):
            out[f"event__{part}_sin"] = np.sin(2 * np.pi * phase).astype("float32")
            out[f"event__{part}_cos"] = np.cos(2 * np.pi * phase).astype("float32")
    return out


def _in_row_order(result: pd.Series) -> np.ndarray:
    """A groupby-rolling result (indexed by customer and ts) as a column of the frame: its
    groups come in order of appearance and the frame is sorted by customer, so its order is
    the frame's (the sanity check would see a shift)."""
    return result.to_numpy()


# ---------------------------------------------------------------------- children


def _measure(
    work: Callable[[], Any], repeats: int, keep: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """Wall and CPU time of each run, the RSS before the first, the peak growth above it and
    the process's peak (MiB); plus what ``keep`` takes from the first result (which is
    dropped right after, so no two results are ever alive at once)."""
    gc.collect()
    before = status_kib("VmRSS")
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child would report the
    # parent's RSS when that was higher.
    loading_peak = status_kib("VmHWM")
    peak_ok = reset_peak()
    walls, cpus, system, kept = [], [], [], {}
    for run in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        sys_before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        system.append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys_before)
        if run == 0:
            kept = keep(result)
        del result
        gc.collect()
    peak = status_kib("VmHWM")
    return kept | {
        "seconds": walls,
        "cpu_seconds": cpus,
        "sys_seconds": system,
        "rss_before_mib": before / 1024,
        "growth_mib": (peak - before) / 1024 if peak_ok and before else None,
        "peak_mib": max(peak, loading_peak) / 1024,
    }


def child(args: argparse.Namespace) -> int:
    frame = pl.read_parquet(args.data)  # one row group: one chunk, as prepare_events gives
    sample = json.loads(args.sample.read_text()) if args.sample else None
    out: dict[str, Any] = {"rows": frame.height}  # (customers: counted by the parent)

    def keep(result: pl.DataFrame | pd.DataFrame) -> dict[str, Any]:
        table = pl.from_pandas(result) if isinstance(result, pd.DataFrame) else result
        if sample is not None:
            rows = table.filter(pl.col(CUSTOMER).is_in(sample))
            rows.write_parquet(args.result.with_suffix(".pq"))
        return {"output_rows": table.height, "columns": table.width}

    if args.child == "ours":
        facts = _measure(lambda: event_features(frame, SPEC), args.repeats, keep)
    elif args.child == "pandas":
        table = frame.to_pandas()
        del frame
        facts = _measure(lambda: pandas_features(table, SPEC), args.repeats, keep)
    else:
        try:
            from workers.preprocessing.features.aggregates import cutoff_aggregates
        except ImportError as error:
            args.result.write_text(json.dumps({"skipped": f"{type(error).__name__}: {error}"}))
            return 0
        cutoffs = monthly_cutoffs(frame)
        facts = _measure(lambda: cutoff_aggregates(frame, cutoffs, SPEC), args.repeats, keep)
        out["cutoffs"] = len(cutoffs)
    args.result.write_text(json.dumps(out | facts))
    return 0


@dataclass(frozen=True)
class Side:
    name: str
    rows: int
    customers: int
    seconds: list[float]
    cpu_seconds: list[float]
    sys_seconds: list[float]
    peak_mib: float
    growth_mib: float | None
    rss_before_mib: float
    facts: dict[str, Any]
    sample: pl.DataFrame | None

    @property
    def median(self) -> float:
        return float(statistics.median(self.seconds))

    @property
    def cpu_median(self) -> float:
        return float(statistics.median(self.cpu_seconds))

    @property
    def sys_median(self) -> float:
        return float(statistics.median(self.sys_seconds))


def run_child(
    kind: str, name: str, data: tuple[Path, int], repeats: int, sample: Path | None, work: Path
) -> Side | str:
    """One side in a fresh process; the reason instead when it was skipped or failed."""
    result = work / f"{name}.json"
    command = [sys.executable, "-m", "benchmarks.feature_engine", "--child", kind]
    path, customers = data
    command += ["--data", str(path), "--repeats", str(repeats), "--result", str(result)]
    if sample is not None:
        command += ["--sample", str(sample)]
    log(f"{name}: running ...")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"failed (exit {done.returncode}): {tail}"
    facts = json.loads(result.read_text())
    if "skipped" in facts:
        return f"skipped: {facts['skipped']}"
    saved = result.with_suffix(".pq")
    side = Side(
        name=name,
        rows=facts["rows"],
        customers=customers,
        seconds=facts["seconds"],
        cpu_seconds=facts["cpu_seconds"],
        sys_seconds=facts["sys_seconds"],
        peak_mib=facts["peak_mib"],
        growth_mib=facts["growth_mib"],
        rss_before_mib=facts["rss_before_mib"],
        facts=facts,
        sample=pl.read_parquet(saved) if saved.exists() else None,
    )
    runs = ", ".join(f"{s:.2f}" for s in side.seconds)
    log(f"{name}: {runs} s; peak RSS {side.peak_mib:,.0f} MiB")
    return side


# ---------------------------------------------------------------------- sanity check


@dataclass(frozen=True)
class Check:
    column: str
    values: int
    null_mismatches: int
    worst_relative: float

    @property
    def ok(self) -> bool:
        return self.null_mismatches == 0 and self.worst_relative <= REL_TOL


def compare(ours: pl.DataFrame, theirs: pl.DataFrame) -> list[Check]:
    """Per feature: null positions and the largest relative difference, rows matched by
    (customer_id, ts)."""
    ours, theirs = ours.sort(CUSTOMER, TS), theirs.sort(CUSTOMER, TS)
    if not ours.select(CUSTOMER, TS).equals(theirs.select(CUSTOMER, TS)):
        return [Check("(rows)", ours.height, abs(ours.height - theirs.height) or 1, math.inf)]
    checks = []
    for name in feature_columns(SPEC):
        a = ours[name].cast(pl.Float64).fill_nan(None).to_numpy()
        b = theirs[name].cast(pl.Float64).fill_nan(None).to_numpy()
        a_null, b_null = np.isnan(a), np.isnan(b)
        both = ~a_null & ~b_null
        scale = np.maximum(np.abs(a[both]), np.abs(b[both]))
        diff = np.abs(a[both] - b[both])
        relative = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        worst = float(relative.max()) if relative.size else 0.0
        checks.append(Check(name, int(both.sum()), int((a_null != b_null).sum()), worst))
    return checks


# ---------------------------------------------------------------------- report


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info() -> dict[str, str]:
    versions = package_versions(("polars", "pandas", "numpy", "pyarrow"))
    digest = hashlib.sha256(FEATURE_CODE.read_bytes()).hexdigest()[:12]
    return {
        **describe_machine(ROOT, versions, diff_digest=False),
        "per_event.py sha256": digest,
    }


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _verdict(met: bool | None, text: str) -> str:
    if met is None:
        return f"not applicable at this size ({text})"
    return f"{'met' if met else '**NOT MET**'} ({text})"


def side_row(side: Side, ratio: str) -> str:
    return (
        f"| {side.name} | {side.rows:,} | {side.customers:,} | {side.median:.2f} "
        f"| {side.seconds[0]:.2f} | {side.cpu_median:.2f} ({side.sys_median:.2f}) "
        f"| {side.rows / side.median:,.0f} "
        f"| {_mib(side.peak_mib)} | {_mib(side.growth_mib)} | {ratio} |"
    )


def build_report(
    options: Options,
    machine: dict[str, str],
    sides: dict[str, Side | str],
    checks: list[Check],
    generated: tuple[int, int, float],
    load: tuple[str, str],
    started: datetime,
) -> tuple[str, list[bool | None]]:
    at_target = options.events == TARGET_EVENTS and options.customers == TARGET_CUSTOMERS
    full, small, base = sides.get("ours"), sides["ours (slice)"], sides["pandas (slice)"]
    full = full if full is not None else small  # the slice is the whole log
    cut = sides["cutoffs"]
    verdicts: list[bool | None] = []
    stat = f"median of {options.repeats}" if options.repeats > 1 else "one run"
    command = "python -m benchmarks.feature_engine " + " ".join(sys.argv[1:])
    rows, customers, seconds = generated
    out = [
        *report_header(started, command, machine, *load),
        (
            f"Log: {options.events:,} raw rows, {options.customers:,} customers, seed "
            f"{options.seed}; prepared frame {rows:,} events of {customers:,} customers, "
            f"generated in {seconds:.1f} s. Features: {len(feature_columns(SPEC))} columns "
            "(lags 1/7/30, windows 7D/14D/30D/90D, days since previous, calendar)."
        ),
        "",
        (
            f"| side | events | customers | seconds ({stat}) | first run (s) | CPU s (sys) | "
            "events/s | peak RSS (MiB) | peak growth (MiB) | pandas / ours |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratio = "-"
    if isinstance(small, Side) and isinstance(base, Side):
        ratio = f"**{base.median / small.median:.1f}×**"
    listed = [sides.get("ours"), small, base, cut]
    for side in listed:
        if isinstance(side, Side):
            out.append(side_row(side, ratio if side is small else ""))
    out.append("")
    if isinstance(full, Side):
        met = full.median <= TARGET_SECONDS if at_target else None
        met_peak = full.peak_mib <= TARGET_PEAK_MIB if at_target else None
        verdicts += [met, met_peak]
        out.append(
            f"* Target, per-event features for {TARGET_EVENTS:,} events / "
            f"{TARGET_CUSTOMERS:,} customers in ≤ {TARGET_SECONDS:g} s: "
            + _verdict(met, f"{full.median:.2f} s, {stat}; first run {full.seconds[0]:.2f} s")
        )
        out.append(
            f"* Target, peak RSS ≤ 3 GiB ({TARGET_PEAK_MIB:,} MiB) for the same: "
            + _verdict(
                met_peak,
                f"{full.peak_mib:,.0f} MiB for the process, input "
                f"{full.rss_before_mib:,.0f} MiB before the first call",
            )
        )
    if isinstance(cut, Side):
        met = cut.median <= TARGET_CUTOFF_SECONDS if at_target else None
        verdicts.append(met)
        pairs = cut.facts.get("output_rows", 0)
        out.append(
            f"* Target, per-customer features at {CUTOFFS} monthly cutoffs over "
            f"{TARGET_EVENTS:,} events in ≤ {TARGET_CUTOFF_SECONDS:g} s "
            f"(`cutoff_aggregates`, {pairs:,} rows): "
            + _verdict(met, f"{cut.median:.2f} s, {stat}")
        )
    else:
        out.append(f"* Per-customer features at {CUTOFFS} monthly cutoffs: {cut}")
    for label, side in (("ours", full), ("ours on the slice", small), ("pandas", base)):
        if isinstance(side, str):
            out.append(f"* {label}: {side}")
    agree = all(c.ok for c in checks)
    worst = max(checks, key=lambda c: c.worst_relative, default=None)
    compared = sum(c.values for c in checks)
    out += [
        (
            f"* Sanity: ours and pandas on {SAMPLE_CUSTOMERS} customers of the slice, "
            f"{len(checks)} columns, {compared:,} non-null values: "
            + (
                f"agree (worst relative difference {worst.worst_relative:.1e}, `{worst.column}`)."
                if agree and worst
                else "**DISAGREE** (see below)."
                if worst
                else "not run."
            )
        ),
        (
            "* Seconds: wall time of the call; CPU: user + system time of the process (polars "
            "uses both cores, the pandas code one), system time mostly page faults of fresh "
            "memory, costly on this VM. Peak RSS: the child process's high-water mark, input "
            "included; peak growth: above its RSS before the first call."
        ),
    ]
    if not agree:
        out += [
            "",
            "| column | values | null mismatches | worst relative |",
            "|---|---:|---:|---:|",
        ]
        for c in checks:
            if not c.ok:
                out.append(
                    f"| {c.column} | {c.values:,} | {c.null_mismatches} | {c.worst_relative:.2e} |"
                )
    return "\n".join(out) + "\n", verdicts


# ---------------------------------------------------------------------- main


def run(options: Options) -> int:
    started = datetime.now(UTC)
    machine = machine_info()
    log(f"generating {options.events:,} events of {options.customers:,} customers ...")
    clock = time.perf_counter()
    frame = prepared_log(options.events, options.customers, options.seed)
    generated = (frame.height, frame[CUSTOMER].n_unique(), time.perf_counter() - clock)
    sliced = head_customers(frame, options.baseline_events)
    rng = np.random.default_rng(options.seed + 1)
    names = sliced[CUSTOMER].unique(maintain_order=True).to_list()
    sample = sorted(rng.choice(names, size=min(SAMPLE_CUSTOMERS, len(names)), replace=False))
    with tempfile.TemporaryDirectory(prefix="feature_engine_") as directory:
        work = Path(directory)
        full_path, slice_path, sample_path = work / "full.pq", work / "slice.pq", work / "s.json"
        # Uncompressed parquet in one row group: a child reads it straight into one chunk
        # per column (an IPC read peaks at twice the frame, and would count in its peak).
        frame.write_parquet(full_path, compression="uncompressed", row_group_size=frame.height)
        sliced.write_parquet(slice_path, compression="uncompressed", row_group_size=sliced.height)
        sample_path.write_text(json.dumps([str(s) for s in sample]))
        whole = sliced.height == frame.height
        del frame, sliced
        gc.collect()
        load_before = load_average()
        full, part = (full_path, generated[1]), (slice_path, len(names))
        sides: dict[str, Side | str] = {}
        if not whole:
            sides["ours"] = run_child("ours", "ours", full, options.repeats, None, work)
        sides["ours (slice)"] = run_child(
            "ours", "ours (slice)", part, options.repeats, sample_path, work
        )
        sides["pandas (slice)"] = run_child(
            "pandas", "pandas (slice)", part, options.repeats, sample_path, work
        )
        sides["cutoffs"] = run_child("cutoffs", "cutoffs", full, options.repeats, None, work)
        load_after = load_average()
    small, base = sides["ours (slice)"], sides["pandas (slice)"]
    checks: list[Check] = []
    if isinstance(small, Side) and isinstance(base, Side):
        assert small.sample is not None and base.sample is not None
        checks = compare(small.sample, base.sample)
    text, verdicts = build_report(
        options, machine, sides, checks, generated, (load_before, load_after), started
    )
    print(text)
    if options.output:
        options.output.write_text(text)
    if not checks or not all(c.ok for c in checks):
        return 2
    return 1 if False in verdicts else 0


def main(argv: Sequence[str] | None = None) -> int:
    options, args = parse_args(argv)
    if args.child:
        return child(args)
    return run(options)


if __name__ == "__main__":
    sys.exit(main())

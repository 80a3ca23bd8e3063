"""Quality assessment: ``assess()`` on a 1M × 60 customer table next to a plain pandas loop.

Generates, with a fixed seed, an in-memory DataFrame resembling a customer table (default
1,000,000 rows × 60 columns: 31 float, 10 int, 15 text, 2 timestamp and 2 bool columns; the
mix stays proportional with ``--columns``):

* floats: normal and lognormal (amount-like names, so the non-negative rule applies), about
  2% NaN in every third column, one column with a few values 100× too large (unit mix-up),
  one amount column with a few negative values, one heavy-tailed column;
* ints: ages, counts (Poisson), a score, one column with a -1 sentinel;
* text (pandas ``str`` dtype): an id-like ``customer_id`` (≈ 300k distinct per 1M rows),
  columns with 3 to 10,000 levels (Zipf-like frequencies), mixed spellings of the most
  frequent levels ('NY' / 'ny' / 'NY ' / ' Ny'), placeholders ('unknown', 'N/A', ''), a
  numeric-looking ``zip_code`` with a few words among the numbers, some missing values;
* timestamps: ``event_ts`` (two years of event times, volume growing over time with a
  weekday pattern, 0.5% missing, 0.05% after ``as_of``) and ``signup_ts``;
* bools; and a few exact duplicate rows (one per 20,000 rows).

Then it times, in this process, interleaved, median of ``--repeats`` runs each:

* **ours**: ``assess(frame, AssessOptions(as_of=...))`` with default options (the first
  timestamp column is the time axis; amount-named numeric columns must not be negative);
  its column profiles run on ``THREADS`` threads. ``report_json`` is timed once, apart.
* **baseline**: what you would write instead of this service, a plain single-threaded
  per-column pandas loop, written without optimisation. For every column: ``isna().mean()``
  and ``nunique()``. Numbers (ints, floats): ``quantile([0, .01, .25, .5, .75, .99, .999,
  1])``, ``mean()``, ``std()``, ``skew()``, counts outside the 1.5×IQR and 3×IQR fences,
  the robust z outlier share (median and MAD via ``(s - s.median()).abs().median()``, limit
  3.5 × 1.4826 × MAD), the negative share, the unit-outlier share (positives > 100× their
  upper quartile) and a 20-bin ``np.histogram``. Text: ``value_counts()`` (top 20), the
  placeholder share and the spelling groups from ``.str.strip().str.lower()`` (values
  grouped by the normalised text; skipped above 1,000 distinct values, as ours does), and
  the numeric-looking share via ``pd.to_numeric(errors="coerce")``. Timestamps:
  min / max, the share after ``as_of``, daily counts (``dt.floor("D").value_counts()``
  reindexed to every calendar day, and the share of days without events) and a 20-bin
  histogram. Bools: ``value_counts()``. The table: ``frame.isna().sum().sum()`` and
  ``frame.duplicated().sum()``.

  The baseline computes a **subset** of our report: no period breaks, no change points,
  trend or seasonality, no scores, findings or recommendations, no type conformance, and
  daily counts without gap analysis. Its skewness is pandas' (bias-corrected) one, and its
  numeric-looking test is ``to_numeric`` rather than our number pattern.

Wall time and CPU time (``time.process_time``, all threads) are taken around each call; peak
RSS growth is the kernel's high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` before each call) minus the RSS before the call. A warm-up on the
first 2,000 rows (imports, caches) runs before the timed calls and is not counted.

As a sanity check, ours and the baseline must agree on the missing share and the distinct
count of three columns and on the number of duplicate rows. Exit status: 0; 1 when the
target (ours ≤ 5 s on 1,000,000 × 60) is missed; 2 when the two disagree. Run from the
repository root::

    .venv/bin/python -m benchmarks.quality_assessment [--rows 1000000] [--columns 60] \
        [--repeats 3] [--output FILE]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmarks.machine import (
    describe_machine,
    load_average,
    package_versions,
    report_header,
    reset_peak,
    status_kib,
)
from workers.preprocessing.quality.assess import THREADS, AssessOptions, assess, report_json
from workers.preprocessing.quality.metrics import PLACEHOLDERS

ROOT = Path(__file__).resolve().parent.parent
QUALITY_DIR = ROOT / "workers" / "preprocessing" / "quality"
TARGET_SECONDS = 5.0
TARGET_ROWS = 1_000_000
TARGET_COLUMNS = 60
HIGH_CARDINALITY = 1000  # AssessOptions' default: no spelling groups above this
WARMUP_ROWS = 2000
QUANTILES = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999, 1.0]
AS_OF = datetime(2026, 11, 27, tzinfo=UTC)
SPAN_DAYS = 730
ROWS_PER_DUPLICATE = 20_000
# The 60-column mix; other --columns keep these proportions.
MIX = {"float": 31, "int": 10, "text": 15, "timestamp": 2, "bool": 2}

# (name, distribution, first parameter, second parameter): normal (mean, sd) or lognormal
# (mu, sigma of the log).
# fmt: off
FLOATS: tuple[tuple[str, str, float, float], ...] = (
    ("balance", "normal", 1200.0, 900.0), ("monthly_spend", "lognormal", 4.0, 0.8),
    ("avg_order_value", "lognormal", 3.5, 0.6), ("lifetime_revenue", "lognormal", 6.0, 1.1),
    ("discount_rate", "normal", 0.12, 0.05), ("refund_amount", "lognormal", 2.5, 0.9),
    ("credit_limit", "normal", 5000.0, 1500.0), ("churn_score", "normal", 0.3, 0.15),
    ("engagement_score", "normal", 50.0, 15.0), ("session_minutes", "lognormal", 2.0, 0.7),
    ("basket_size_avg", "lognormal", 1.0, 0.5), ("shipping_cost", "lognormal", 1.8, 0.4),
    ("latitude", "normal", 39.0, 5.0), ("longitude", "normal", -95.0, 15.0),
    ("income_estimate", "lognormal", 11.0, 0.6), ("tenure_years", "lognormal", 0.8, 0.9),
    ("nps_score", "normal", 30.0, 40.0), ("satisfaction", "normal", 3.8, 0.9),
    ("page_load_ms", "lognormal", 6.5, 2.0), ("cart_value", "lognormal", 4.2, 0.9),
    ("return_rate", "normal", 0.08, 0.04), ("margin", "normal", 0.25, 0.1),
    ("coupon_value", "lognormal", 1.5, 0.5), ("ltv_forecast", "normal", 800.0, 400.0),
    ("risk_score", "normal", 0.0, 1.0), ("propensity", "normal", 0.5, 0.2),
    ("email_open_rate", "normal", 0.22, 0.08), ("click_rate", "normal", 0.04, 0.02),
    ("fraud_score", "lognormal", -3.0, 1.0), ("distance_km", "lognormal", 2.5, 1.0),
    ("last_payment_amount", "lognormal", 3.8, 0.9),
)
# fmt: on
UNIT_MIXUP = "lifetime_revenue"  # 0.1% of values 100× too large (cents among dollars)
NEGATIVE_AMOUNT = "refund_amount"  # 0.5% negative values in a non-negative column
INTS = (
    "age",
    "n_orders",
    "quantity_last_order",
    "days_since_signup",
    "loyalty_points",
    "household_size",
    "support_calls",
    "credit_score",
    "visits_30d",
    "region_code",
)
# Most frequent first (Zipf-like): NY and CA get the mixed spellings.
# fmt: off
STATES = (
    "NY", "CA", "TX", "FL", "IL", "PA", "OH", "GA", "NC", "MI", "NJ", "VA", "WA", "AZ", "MA",
    "TN", "IN", "MO", "MD", "WI", "CO", "MN", "SC", "AL", "LA", "KY", "OR", "OK", "CT", "UT",
    "IA", "NV", "AR", "MS", "KS", "NM", "NE", "ID", "WV", "HI", "NH", "ME", "MT", "RI", "DE",
    "SD", "ND", "AK", "VT", "WY",
)
# fmt: on


@dataclass(frozen=True)
class TextSpec:
    """A text column: ``levels`` values (or these ``words``), Zipf-like frequencies."""

    name: str
    levels: int
    words: tuple[str, ...] = ()
    spellings: bool = False  # variants of the two most frequent values
    placeholders: float = 0.0  # share of 'unknown' / 'N/A' / ''
    missing: float = 0.0
    numeric: bool = False  # numbers as text (zip codes), with a few words among them


# Ordered by importance: --columns below 60 keeps the first ones.
TEXTS = (
    TextSpec("customer_id", 0),  # id-like: 0.3 × rows distinct candidates
    TextSpec("state", len(STATES), words=STATES, spellings=True),
    TextSpec("segment", 3, words=("Consumer", "Corporate", "Home Office"), spellings=True),
    TextSpec(
        "channel",
        6,
        words=("web", "app", "store", "phone", "email", "partner"),
        placeholders=0.015,
    ),
    TextSpec("zip_code", 10_000, numeric=True),
    TextSpec("city", 1000, missing=0.01),
    TextSpec("country", 20),
    TextSpec("plan", 8, spellings=True),
    TextSpec("payment_method", 6, missing=0.02, placeholders=0.01),
    TextSpec("referrer", 2000),
    TextSpec("product_category", 40, spellings=True),
    TextSpec("browser", 12),
    TextSpec("language", 30),
    TextSpec("email_domain", 5000),
    TextSpec("device_model", 10_000),
)
MIXED_WORDS = ("see notes", "PO BOX", "unknown", "n/a")  # in zip_code


# ---------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    rows: int
    columns: int
    repeats: int
    seed: int
    output: Path | None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality_assessment",
        description="Wall time of assess() on a generated customer table vs a pandas loop.",
    )
    parser.add_argument(
        "--rows", type=int, default=TARGET_ROWS, help=f"rows (default {TARGET_ROWS:,})"
    )
    parser.add_argument(
        "--columns",
        type=int,
        default=TARGET_COLUMNS,
        help=f"columns, same type mix as the default (default {TARGET_COLUMNS})",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each side, interleaved (default 3)"
    )
    parser.add_argument("--seed", type=int, default=20261126, help="generator seed")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.rows < 100 or args.columns < 5 or args.repeats < 1:
        parser.error("--rows must be >= 100, --columns >= 5 and --repeats >= 1")
    return Options(
        rows=args.rows,
        columns=args.columns,
        repeats=args.repeats,
        seed=args.seed,
        output=args.output,
    )


# ---------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    counts: dict[str, int]  # columns per kind
    planted_duplicates: int
    seconds: float


def column_mix(columns: int) -> dict[str, int]:
    """Columns per kind in the proportions of ``MIX`` (largest remainder), at least one each."""
    total = sum(MIX.values())
    exact = {kind: columns * n / total for kind, n in MIX.items()}
    counts = {kind: int(value) for kind, value in exact.items()}
    by_remainder = sorted(MIX, key=lambda kind: (counts[kind] - exact[kind], kind))
    for kind in by_remainder[: columns - sum(counts.values())]:
        counts[kind] += 1
    for kind in MIX:
        if counts[kind] == 0:
            counts[kind] = 1
            counts["float"] -= 1
    return counts


def _nth_name(base: str, index: int, period: int) -> str:
    """The name itself for the first round, then ``base_2``, ``base_3``, ..."""
    return base if index < period else f"{base}_{index // period + 1}"


def _text_array(codes: np.ndarray, levels: Sequence[str]) -> pd.Series:
    """A ``str`` column from codes into ``levels`` (-1: missing)."""
    indices = pa.array(codes, mask=codes < 0, type=pa.int32())
    dictionary = pa.DictionaryArray.from_arrays(indices, pa.array(list(levels), pa.string()))
    return pd.Series(pd.array(dictionary.cast(pa.large_string()), dtype="str"))


def _zipf_codes(rng: np.random.Generator, rows: int, levels: int, power: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1) ** power
    return rng.choice(levels, size=rows, p=weights / weights.sum()).astype(np.int32)


def _text_column(
    rng: np.random.Generator, spec: TextSpec, rows: int
) -> tuple[np.ndarray, list[str]]:
    """(codes per row, levels) for one text column; code -1 is a missing value."""
    if spec.levels == 0:  # id-like
        pool = max(1, int(rows * 0.3))
        codes = rng.integers(0, pool, size=rows, dtype=np.int32)
        return codes, [f"C{k:08d}" for k in range(pool)]
    if spec.words:
        levels = list(spec.words)
    elif spec.numeric:
        levels = [f"{k:05d}" for k in rng.choice(100_000, size=spec.levels, replace=False)]
    else:
        width = len(str(spec.levels))
        levels = [f"{spec.name}_{k:0{width}d}" for k in range(spec.levels)]
        if spec.spellings:
            levels = [level.title() for level in levels]
    codes = _zipf_codes(rng, rows, len(levels), 1.0 if len(levels) > 100 else 0.6)
    if spec.spellings:  # 3% of the two most frequent values in another spelling
        for top in (0, 1):
            word = levels[top]
            variants = [word.lower(), word + " ", " " + word.capitalize(), word.upper()]
            variants = [v for v in dict.fromkeys(variants) if v != word]
            base = len(levels)
            levels += variants
            hit = np.flatnonzero((codes == top) & (rng.random(rows) < 0.03))
            codes[hit] = base + rng.integers(0, len(variants), size=hit.size)
    if spec.numeric:  # a few words among the numbers
        base = len(levels)
        levels += list(MIXED_WORDS)
        hit = np.flatnonzero(rng.random(rows) < 0.004)
        codes[hit] = base + rng.integers(0, len(MIXED_WORDS), size=hit.size)
    if spec.placeholders:
        base = len(levels)
        levels += ["unknown", "N/A", ""]
        hit = np.flatnonzero(rng.random(rows) < spec.placeholders)
        codes[hit] = base + rng.integers(0, 3, size=hit.size)
    if spec.missing:
        codes[rng.random(rows) < spec.missing] = -1
    return codes, levels


def _float_column(rng: np.random.Generator, index: int, rows: int) -> tuple[str, np.ndarray]:
    base, distribution, first, second = FLOATS[index % len(FLOATS)]
    name = _nth_name(base, index, len(FLOATS))
    if distribution == "normal":
        values = rng.normal(first, second, size=rows)
    else:
        values = rng.lognormal(first, second, size=rows)
    if base == UNIT_MIXUP:
        hit = rng.random(rows) < 0.001
        values[hit] *= 100.0
    if base == NEGATIVE_AMOUNT:
        hit = rng.random(rows) < 0.005
        values[hit] *= -1.0
    if index % 3 == 1:  # about 2% NaN in every third column
        values[rng.random(rows) < 0.02] = np.nan
    return name, values


def _int_column(rng: np.random.Generator, index: int, rows: int) -> tuple[str, np.ndarray]:
    base = INTS[index % len(INTS)]
    draws: dict[str, Callable[[], np.ndarray]] = {
        "age": lambda: np.clip(rng.normal(42, 14, size=rows), 18, 95),
        "n_orders": lambda: rng.poisson(4.0, size=rows),
        "quantity_last_order": lambda: rng.poisson(1.5, size=rows) + 1,
        "days_since_signup": lambda: rng.integers(0, SPAN_DAYS, size=rows),
        "loyalty_points": lambda: rng.geometric(0.002, size=rows),
        "household_size": lambda: rng.integers(1, 7, size=rows),
        "support_calls": lambda: rng.poisson(0.5, size=rows),
        "credit_score": lambda: np.clip(rng.normal(680, 60, size=rows), 300, 850),
        "visits_30d": lambda: rng.poisson(8.0, size=rows),
        "region_code": lambda: np.where(
            rng.random(rows) < 0.05, -1, rng.integers(100, 999, size=rows)
        ),
    }
    return _nth_name(base, index, len(INTS)), draws[base]().astype(np.int64)


def _event_times(rng: np.random.Generator, rows: int, as_of: np.datetime64) -> np.ndarray:
    """Two years of event times: volume growing by half, fewer events at weekends."""
    start_day = (as_of - np.timedelta64(SPAN_DAYS, "D")).astype("datetime64[D]")
    days = np.arange(SPAN_DAYS)
    weekday = (days + int((start_day.astype(np.int64) + 3) % 7)) % 7  # 0 = Monday
    weights = (1.0 + 0.5 * days / SPAN_DAYS) * np.where(weekday >= 5, 0.6, 1.0)
    day = rng.choice(SPAN_DAYS, size=rows, p=weights / weights.sum())
    seconds = rng.integers(0, 86_400, size=rows)
    times = (start_day + day.astype("timedelta64[D]")).astype("datetime64[ns]") + (
        seconds.astype("timedelta64[s]")
    )
    future = rng.random(rows) < 0.0005
    times[future] = as_of + rng.integers(1, 20 * 86_400, size=int(future.sum())).astype(
        "timedelta64[s]"
    )
    times[rng.random(rows) < 0.005] = np.datetime64("NaT")
    return times


def _timestamp_column(
    rng: np.random.Generator, index: int, rows: int, as_of: np.datetime64
) -> tuple[str, np.ndarray]:
    if index == 0:
        return "event_ts", _event_times(rng, rows, as_of)
    start = (as_of - np.timedelta64(2 * SPAN_DAYS, "D")).astype("datetime64[s]").astype(np.int64)
    seconds = rng.integers(0, SPAN_DAYS * 86_400, size=rows) + start
    times = seconds.astype("datetime64[s]").astype("datetime64[ns]")
    times[rng.random(rows) < 0.01] = np.datetime64("NaT")
    return _nth_name("signup_ts", index - 1, 1), times


def build_table(rows: int, columns: int, seed: int) -> Table:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    counts = column_mix(columns)
    as_of = np.datetime64(AS_OF.replace(tzinfo=None), "ns")
    # Exact duplicates: rows ``copies`` become copies of rows ``sources`` in every column.
    planted = max(1, rows // ROWS_PER_DUPLICATE)
    chosen = rng.choice(rows, size=2 * planted, replace=False)
    row_map = np.arange(rows)
    row_map[chosen[planted:]] = chosen[:planted]
    data: dict[str, Any] = {}
    for i in range(counts["text"]):
        spec = TEXTS[i % len(TEXTS)]
        name = _nth_name(spec.name, i, len(TEXTS))
        codes, levels = _text_column(rng, spec, rows)
        data[name] = _text_array(codes[row_map], levels)
    for i in range(counts["timestamp"]):
        name, times = _timestamp_column(rng, i, rows, as_of)
        data[name] = pd.Series(times[row_map])
    for i in range(counts["float"]):
        name, values = _float_column(rng, i, rows)
        data[name] = values[row_map]
    for i in range(counts["int"]):
        name, values = _int_column(rng, i, rows)
        data[name] = values[row_map]
    for i in range(counts["bool"]):
        name = _nth_name(("is_member", "opted_in")[i % 2], i, 2)
        data[name] = (rng.random(rows) < (0.3 if i % 2 == 0 else 0.6))[row_map]
    frame = pd.DataFrame(data)
    return Table(frame, counts, planted, time.perf_counter() - started)


# ---------------------------------------------------------------------- the baseline


TEXT = "text"
TO_NUMERIC = "text: of which to_numeric"
TABLE = "table (missing cells, duplicated rows)"
BASELINE_PARTS = ("numeric", TEXT, TO_NUMERIC, "timestamp", "bool", TABLE)


@dataclass
class BaselineResult:
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    table: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per part

    def add_time(self, part: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - since
        return now


def baseline(frame: pd.DataFrame, as_of: pd.Timestamp) -> BaselineResult:
    """The per-column pandas loop (see the module docstring); single-threaded."""
    result = BaselineResult()
    result.seconds = dict.fromkeys(BASELINE_PARTS, 0.0)
    for name in frame.columns:
        started = time.perf_counter()
        s = frame[name]
        facts: dict[str, Any] = {"missing_share": float(s.isna().mean()), "nunique": s.nunique()}
        if pd.api.types.is_bool_dtype(s.dtype):
            facts["value_counts"] = s.value_counts().to_dict()
            result.add_time("bool", started)
        elif pd.api.types.is_numeric_dtype(s.dtype):
            facts.update(_baseline_numeric(s))
            result.add_time("numeric", started)
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            facts.update(_baseline_timestamp(s, as_of))
            result.add_time("timestamp", started)
        else:
            facts.update(_baseline_text(s, facts["nunique"], result))
            result.add_time(TEXT, started)
        result.columns[str(name)] = facts
    started = time.perf_counter()
    result.table["missing_cells"] = int(frame.isna().sum().sum())
    result.table["duplicate_rows"] = int(frame.duplicated().sum())
    result.add_time(TABLE, started)
    return result


def _baseline_numeric(s: pd.Series) -> dict[str, Any]:
    values = s.dropna()
    if values.empty:
        return {}
    q = values.quantile(QUANTILES)
    q1, median, q3 = q[0.25], q[0.5], q[0.75]
    iqr = q3 - q1
    deviation = (values - median).abs()
    mad = deviation.median()
    scale = 1.4826 * mad
    positive = values[values > 0]
    unit = (positive > 100 * positive.quantile(0.75)).sum() if len(positive) else 0
    counts, edges = np.histogram(values, bins=20, range=(q[0.0], q[1.0]))
    return {
        "quantiles": q.to_dict(),
        "mean": values.mean(),
        "std": values.std(),
        "skew": values.skew(),
        "iqr_outliers": int(((values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)).sum()),
        "extreme_outliers": int(((values < q1 - 3 * iqr) | (values > q3 + 3 * iqr)).sum()),
        "robust_z_outliers": int((deviation > 3.5 * scale).sum()) if scale > 0 else 0,
        "negative_share": float((values < 0).mean()),
        "unit_outlier_share": float(unit / len(values)),
        "histogram": (counts.tolist(), edges.tolist()),
    }


def _baseline_text(s: pd.Series, distinct: int, result: BaselineResult) -> dict[str, Any]:
    counts = s.value_counts()
    non_missing = int(counts.sum())
    normalised = s.str.strip().str.lower()
    facts: dict[str, Any] = {
        "top_values": counts.head(20).to_dict(),
        "placeholder_share": float(normalised.isin(PLACEHOLDERS).mean()),
    }
    if distinct <= HIGH_CARDINALITY:
        pairs = pd.DataFrame({"key": normalised, "value": s}).dropna()
        spellings = pairs.groupby(["key", "value"]).size()
        by_key = spellings.groupby(level="key")
        variants = by_key.size()
        off = (by_key.sum() - by_key.max())[variants > 1]
        facts["spelling_groups"] = int((variants > 1).sum())
        facts["inconsistent_spelling_share"] = float(off.sum() / non_missing)
    started = time.perf_counter()
    numbers = pd.to_numeric(s, errors="coerce")
    facts["numeric_looking_share"] = float(numbers.notna().sum() / non_missing)
    result.add_time(TO_NUMERIC, started)
    return facts


def _baseline_timestamp(s: pd.Series, as_of: pd.Timestamp) -> dict[str, Any]:
    values = s.dropna()
    if values.empty:
        return {}
    daily = values[values <= as_of].dt.floor("D").value_counts().sort_index()
    if len(daily):
        every_day = pd.date_range(daily.index[0], daily.index[-1], freq="D")
        daily = daily.reindex(every_day, fill_value=0)
    counts, edges = np.histogram(values.astype("int64"), bins=20)
    return {
        "min": values.min(),
        "max": values.max(),
        "future_share": float((values > as_of).mean()),
        "daily_counts": daily,
        "missing_day_share": float((daily == 0).mean()) if len(daily) else 0.0,
        "histogram": (counts.tolist(), edges.tolist()),
    }


# ---------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Sample:
    side: str
    run: int
    wall_s: float
    cpu_s: float
    peak_growth_mib: float | None
    parts: dict[str, float]


def measure(side: str, run: int, work: Callable[[], dict[str, float]]) -> Sample:
    """Time ``work`` (which returns its own split of the wall time)."""
    gc.collect()
    rss_kib = status_kib("VmRSS")
    peak_ok = reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    parts = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    growth = (status_kib("VmHWM") - rss_kib) / 1024 if peak_ok and rss_kib else None
    return Sample(side, run, wall, cpu, growth, parts)


class Ours:
    """Runs ``assess``; keeps the last report and when its column profiles were done."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.report: dict[str, Any] = {}

    def __call__(self) -> dict[str, float]:
        started = time.perf_counter()
        columns_done = started

        def progress(stage: str, done: float, total: float | None, message: str) -> None:
            nonlocal columns_done
            if stage == "columns":
                columns_done = time.perf_counter()

        self.report = assess(self.frame, AssessOptions(as_of=AS_OF), progress=progress)
        ended = time.perf_counter()
        return {
            "column profiles": columns_done - started,
            "table facts, time facts, scores, findings": ended - columns_done,
        }


class Baseline:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.result = BaselineResult()

    def __call__(self) -> dict[str, float]:
        self.result = baseline(self.frame, pd.Timestamp(AS_OF.replace(tzinfo=None)))
        return dict(self.result.seconds)


# ---------------------------------------------------------------------- sanity check


@dataclass(frozen=True)
class Check:
    fact: str
    ours: float
    baseline: float

    @property
    def ok(self) -> bool:
        return abs(self.ours - self.baseline) <= 1e-12


def sanity_checks(
    report: dict[str, Any], base: BaselineResult, counts: dict[str, int]
) -> list[Check]:
    """Missing share and distinct count of three columns (a text, a float with NaN and a
    timestamp one), and the duplicate rows."""
    ours = {column["name"]: column["metrics"] for column in report["columns"]}
    names = list(base.columns)
    picked = [names[0]]  # the first text column: customer_id
    text, stamps = counts["text"], counts["timestamp"]
    floats = names[text + stamps : text + stamps + counts["float"]]
    with_nan = [n for n in floats if base.columns[n]["missing_share"] > 0]
    picked.append((with_nan or floats or names)[0])
    picked.append(names[text])  # the first timestamp column: event_ts
    checks = []
    for name in dict.fromkeys(picked):
        checks.append(
            Check(
                f"`{name}` missing share",
                ours[name]["missing_share"],
                base.columns[name]["missing_share"],
            )
        )
        checks.append(
            Check(
                f"`{name}` distinct count",
                ours[name]["distinct_count"],
                base.columns[name]["nunique"],
            )
        )
    checks.append(
        Check("duplicate rows", report["table"]["duplicate_rows"], base.table["duplicate_rows"])
    )
    checks.append(
        Check("missing cells", report["table"]["missing_cells"], base.table["missing_cells"])
    )
    return checks


# ---------------------------------------------------------------------- report


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info() -> dict[str, str]:
    """The machine, the data libraries and the fingerprint of the quality code that ran."""
    versions = package_versions(("pandas", "numpy", "pyarrow", "scipy"))
    digest = hashlib.sha256()
    for path in sorted(QUALITY_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {
        **describe_machine(ROOT, versions, cpus="cpus", diff_digest=False),
        "quality code sha256": digest.hexdigest()[:12],
    }


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.6f}"


def _parts_line(title: str, samples: list[Sample]) -> str:
    names = list(samples[0].parts)
    total = _median([s.wall_s for s in samples])
    parts = []
    for name in names:
        seconds = _median([s.parts.get(name, 0.0) for s in samples])
        parts.append(f"{name} {seconds:.2f} s ({seconds / total:.0%})")
    return f"* {title} (median per part): " + "; ".join(parts) + "."


def build_report(
    options: Options,
    machine: dict[str, str],
    table: Table,
    samples: list[Sample],
    checks: list[Check],
    json_seconds: float,
    json_bytes: int,
    load_before: str,
    load_after: str,
    started: datetime,
) -> tuple[str, bool | None]:
    ours = [s for s in samples if s.side == "ours"]
    base = [s for s in samples if s.side == "baseline"]
    o_wall, b_wall = _median([s.wall_s for s in ours]), _median([s.wall_s for s in base])
    b_rest = b_wall - _median([s.parts.get(TO_NUMERIC, 0.0) for s in base])
    o_cpu, b_cpu = _median([s.cpu_s for s in ours]), _median([s.cpu_s for s in base])
    o_peak = [s.peak_growth_mib for s in ours if s.peak_growth_mib is not None]
    b_peak = [s.peak_growth_mib for s in base if s.peak_growth_mib is not None]
    at_target = options.rows == TARGET_ROWS and options.columns == TARGET_COLUMNS
    met = o_wall <= TARGET_SECONDS if at_target else None
    if met is None:
        verdict = f"not applicable at this size ({o_wall:.2f} s)"
    else:
        verdict = f"{'met' if met else '**MISSED**'} ({o_wall:.2f} s)"
    agree = all(c.ok for c in checks)
    frame = table.frame
    mix = ", ".join(f"{n} {kind}" for kind, n in table.counts.items())
    stat = f"median of {options.repeats}" if options.repeats > 1 else "one run each"
    command = "python -m benchmarks.quality_assessment " + " ".join(sys.argv[1:])
    out = [
        *report_header(started, command, machine, load_before, load_after),
        (
            f"Table: {frame.shape[0]:,} rows × {frame.shape[1]} columns ({mix}), seed "
            f"{options.seed}, {table.planted_duplicates} planted duplicate rows, "
            f"{frame.memory_usage(deep=True).sum() / 2**20:,.0f} MiB in memory, generated in "
            f"{table.seconds:.1f} s."
        ),
        (
            f"Ours: `assess(frame, AssessOptions(as_of={AS_OF.isoformat()}))`, default options "
            f"(time column `{frame.select_dtypes('datetime').columns[0]}`), column profiles on "
            f"{THREADS} threads. Baseline: the single-threaded per-column pandas loop of the "
            "module docstring (a subset of our report). "
            f"{options.repeats} timed run(s) per side, interleaved, in one process, after an "
            f"untimed warm-up of both on the first {WARMUP_ROWS:,} rows."
        ),
        "",
        f"| {stat} | ours (`assess`) | baseline (pandas loop) | baseline / ours |",
        "|---|---:|---:|---:|",
        f"| wall time (s) | {o_wall:.2f} | {b_wall:.2f} | **{b_wall / o_wall:.2f}× speed-up** |",
        (f"| baseline without `to_numeric` (s) | | {b_rest:.2f} | {b_rest / o_wall:.2f}× |"),
        f"| CPU time (s) | {o_cpu:.2f} | {b_cpu:.2f} | {b_cpu / o_cpu:.2f}× |",
        f"| CPU / wall | {o_cpu / o_wall:.2f} | {b_cpu / b_wall:.2f} | |",
        (
            f"| peak RSS growth (MiB) | {_mib(_median(o_peak) if o_peak else None)} "
            f"| {_mib(_median(b_peak) if b_peak else None)} | |"
        ),
        (
            f"| target: ours ≤ {TARGET_SECONDS:g} s on {TARGET_ROWS:,} × {TARGET_COLUMNS} "
            f"| {verdict} | | |"
        ),
        "",
        (
            f"* Sanity: ours and the baseline agree on {len(checks)} facts: "
            + ("ok." if agree else "**DISAGREE** (see below).")
        ),
        _parts_line("Ours", ours),
        _parts_line("Baseline", base),
        (
            f"* `report_json` of our report (not in the times above): {json_seconds:.2f} s, "
            f"{json_bytes:,} bytes."
        ),
        "",
        "| run | side | wall (s) | CPU (s) | peak RSS growth (MiB) |",
        "|---:|---|---:|---:|---:|",
    ]
    for s in samples:
        out.append(
            f"| {s.run} | {s.side} | {s.wall_s:.2f} | {s.cpu_s:.2f} | {_mib(s.peak_growth_mib)} |"
        )
    out += ["", "| sanity fact | ours | baseline | |", "|---|---:|---:|---|"]
    for c in checks:
        mark = "ok" if c.ok else "**NO**"
        out.append(f"| {c.fact} | {_number(c.ours)} | {_number(c.baseline)} | {mark} |")
    return "\n".join(out) + "\n", met


# ---------------------------------------------------------------------- main


def run(options: Options) -> int:
    started = datetime.now(UTC)
    machine = machine_info()
    log(f"generating {options.rows:,} rows × {options.columns} columns ...")
    table = build_table(options.rows, options.columns, options.seed)
    log(f"generated in {table.seconds:.1f} s; warming up on {WARMUP_ROWS:,} rows")
    head = table.frame.head(WARMUP_ROWS)
    Ours(head)()
    Baseline(head)()
    ours, base = Ours(table.frame), Baseline(table.frame)
    load_before = load_average()
    samples: list[Sample] = []
    for run_number in range(1, options.repeats + 1):
        # Alternate who goes first, so neither side always runs on a freshly collected heap.
        order: list[tuple[str, Callable[[], dict[str, float]]]] = [
            ("ours", ours),
            ("baseline", base),
        ]
        if run_number % 2 == 0:
            order.reverse()
        for side, work in order:
            sample = measure(side, run_number, work)
            samples.append(sample)
            log(f"run {run_number} {side}: {sample.wall_s:.2f} s wall, {sample.cpu_s:.2f} s CPU")
    load_after = load_average()
    json_started = time.perf_counter()
    json_bytes = len(report_json(ours.report))
    json_seconds = time.perf_counter() - json_started
    checks = sanity_checks(ours.report, base.result, table.counts)
    text, met = build_report(
        options,
        machine,
        table,
        samples,
        checks,
        json_seconds,
        json_bytes,
        load_before,
        load_after,
        started,
    )
    print(text)
    if options.output:
        options.output.write_text(text)
    if not all(c.ok for c in checks):
        return 2
    return 1 if met is False else 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

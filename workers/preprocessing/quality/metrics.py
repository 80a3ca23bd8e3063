"""The named quality metrics: small pure functions, each defined once (docs/quality.md).

Shares are fractions in [0, 1]. Functions take numpy arrays or pandas objects and never
mutate them. ``DEFINITIONS`` is what the docs, the report and its tooltips say about each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Modified z-score (Iglewicz & Hoaglin 1993): 0.6745 * (x - median) / MAD > 3.5.
ROBUST_Z_THRESHOLD = 3.5
MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): MAD of a normal sample estimates sigma / 1.4826
MEANAD_TO_SIGMA = 1.2533  # sqrt(pi / 2): used when MAD is 0 (more than half the values tie)
UNIT_FACTOR = 100.0  # two orders of magnitude above the upper quartile: cents for dollars

# Text that stands for "no value" (disguised missing values), compared trimmed and lower-cased.
PLACEHOLDERS = frozenset(
    {"", "unknown", "n/a", "na", "none", "null", "nil", "nan", "?", "-", "--", "missing"}
)

DEFINITIONS: dict[str, str] = {
    "missing_share": "rows where the value is missing (null / NaN) ÷ rows",
    "placeholder_share": (
        "rows whose text is a placeholder for no value ('unknown', 'n/a', '?', '', …) ÷ rows"
    ),
    "distinct_count": "number of distinct non-missing values",
    "distinct_share": "distinct non-missing values ÷ non-missing values",
    "is_constant": "at most one distinct non-missing value",
    "high_cardinality": "a text column with more distinct values than the threshold",
    "duplicate_row_share": "rows identical to an earlier row in every column ÷ rows",
    "duplicate_key_share": "rows whose key columns repeat an earlier row's ÷ rows",
    "type_conformance": "non-missing values that are valid for the declared type ÷ non-missing",
    "out_of_range_share": "non-missing values outside the declared [min, max] ÷ non-missing",
    "negative_share": "non-missing values below 0 ÷ non-missing",
    "future_share": "timestamps later than as_of ÷ non-missing",
    "mixed_type_share": (
        "in a text column, non-missing values of the minority type (numbers among words, or "
        "words among numbers) ÷ non-missing"
    ),
    "inconsistent_spelling_share": (
        "non-missing values whose spelling differs from the most frequent spelling of the "
        "same trimmed, case-folded text ÷ non-missing"
    ),
    "unit_outlier_share": (
        "positive values more than 100× above the upper quartile of the positive values ÷ "
        "non-missing (a unit mix-up: cents in a dollar column)"
    ),
    "skewness": "Fisher-Pearson skewness g1 = m3 / m2^1.5 of the non-missing values",
    "iqr_outlier_share": (
        "values outside [Q1 - 1.5·IQR, Q3 + 1.5·IQR] ÷ non-missing (null when IQR = 0)"
    ),
    "extreme_outlier_share": (
        "values outside [Q1 - 3·IQR, Q3 + 3·IQR] ÷ non-missing (null when IQR = 0)"
    ),
    "robust_z_outlier_share": (
        "values with |x - median| / (1.4826·MAD) > 3.5 ÷ non-missing (MAD = 0: 1.2533·mean "
        "absolute deviation instead; both 0: no outliers)"
    ),
    "last_event_age_days": "as_of - the latest timestamp, in days",
    "missing_day_share": "calendar days between the first and last event with no event ÷ days",
    "largest_gap_days": "longest run of consecutive calendar days with no event",
    "trend_slope_per_year": (
        "Theil-Sen slope of daily event counts × 365 ÷ mean daily count (relative change/year)"
    ),
    "trend_kendall_tau": "Kendall's tau between day index and daily event count",
    "weekly_seasonality_strength": (
        "max(0, 1 - Var(R) / Var(S + R)) of daily counts with a 7-day moving-average trend, "
        "S = mean by weekday (Hyndman & Athanasopoulos, FPP3 §4.3)"
    ),
    "annual_seasonality_strength": (
        "the same on weekly counts with a 52-week trend and S = mean by week of year "
        "(needs two years)"
    ),
    "change_points": (
        "days where the mean daily count shifts (binary segmentation, BIC penalty, segments of "
        "14+ days)"
    ),
    "period_breaks": (
        "runs of months in which one value (or missing) makes up ≥ 99% of a column that is "
        "varied elsewhere (≤ 80% in the other months)"
    ),
}


def share(count: int | float, total: int | float) -> float:
    return float(count) / float(total) if total else 0.0


# ---------------------------------------------------------------- completeness


def missing_share(series: pd.Series) -> float:
    return share(int(series.isna().sum()), len(series))


def placeholder_share(counts: pd.Series, rows: int) -> float:
    """``counts``: value counts of a text column (value -> rows)."""
    return share(int(counts[is_placeholder(counts.index)].sum()), rows)


def is_placeholder(values: pd.Index) -> np.ndarray:
    keys = normalized_keys(values)
    return np.asarray(keys.isin(PLACEHOLDERS), dtype=bool)


# ---------------------------------------------------------------- uniqueness


def distinct_share(distinct: int, non_missing: int) -> float:
    return share(distinct, non_missing)


def is_constant(distinct: int) -> bool:
    return distinct <= 1


def duplicate_row_share(frame: pd.DataFrame, probe: Sequence[str] = ()) -> tuple[int, float]:
    """(rows repeating an earlier row in every column, that ÷ rows).

    Rows that are unique in the ``probe`` columns (pick the most distinct ones) cannot be
    duplicates, so only the others are hashed in full; rows whose 64-bit hash repeats are
    then compared exactly, so a hash collision never counts.
    """
    if frame.empty or frame.shape[1] == 0:
        return 0, 0.0
    candidates = frame
    if probe:
        seen = pd.util.hash_pandas_object(frame[list(probe)], index=False)
        candidates = frame.loc[seen.duplicated(keep=False).to_numpy()]
    if candidates.empty:
        return 0, 0.0
    hashes = pd.util.hash_pandas_object(candidates, index=False)
    candidates = candidates.loc[hashes.duplicated(keep=False).to_numpy()]
    duplicates = int(candidates.duplicated(keep="first").sum())
    return duplicates, share(duplicates, len(frame))


def duplicate_key_share(frame: pd.DataFrame, keys: Sequence[str]) -> tuple[int, float]:
    if not keys or frame.empty:
        return 0, 0.0
    duplicates = int(frame.duplicated(subset=list(keys), keep="first").sum())
    return duplicates, share(duplicates, len(frame))


# ---------------------------------------------------------------- validity


def numeric_conformance(series: pd.Series, integer: bool = False) -> float:
    """Share of non-missing values that are numbers (integers, when ``integer``)."""
    values = series.dropna()
    if values.empty:
        return 1.0
    if pd.api.types.is_bool_dtype(values.dtype):
        return 0.0
    numbers = pd.to_numeric(values, errors="coerce")
    ok = numbers.notna().to_numpy()
    if integer:
        finite = numbers.to_numpy(dtype=float, na_value=np.nan)
        ok = ok & np.isfinite(finite) & (np.floor(finite) == finite)
    return share(int(ok.sum()), len(values))


def timestamp_conformance(series: pd.Series) -> float:
    values = series.dropna()
    if values.empty or pd.api.types.is_datetime64_any_dtype(values.dtype):
        return 1.0
    if pd.api.types.is_numeric_dtype(values.dtype):
        return 0.0
    parsed = pd.to_datetime(values.astype(str), errors="coerce", format="mixed")
    return share(int(parsed.notna().sum()), len(values))


def boolean_conformance(series: pd.Series) -> float:
    values = series.dropna()
    if values.empty or pd.api.types.is_bool_dtype(values.dtype):
        return 1.0
    accepted = {"true", "false", "1", "0", "yes", "no", "t", "f", "y", "n"}
    keys = normalized_keys(pd.Index(values.astype(str)))
    return share(int(keys.isin(accepted).sum()), len(values))


def out_of_range_count(ordered: np.ndarray, low: float | None, high: float | None) -> int:
    """Values outside [low, high] (either bound may be open); ``ordered`` sorted ascending."""
    below = count_below(ordered, low) if low is not None else 0
    return below + (count_above(ordered, high) if high is not None else 0)


def negative_share(ordered: np.ndarray) -> float:
    return share(count_below(ordered, 0.0), ordered.size)


def future_share(timestamps: np.ndarray, as_of: np.datetime64) -> float:
    """``timestamps``: non-missing datetime64 values in UTC."""
    return share(int((timestamps > as_of).sum()), timestamps.size)


# ---------------------------------------------------------------- consistency


def normalized_keys(values: pd.Index) -> pd.Index:
    """Trimmed, inner-whitespace-collapsed, lower-cased text: 'NY', 'ny ', ' Ny' -> 'ny'.

    pyarrow's vectorised string kernels: a per-value Python loop costs seconds on an id
    column with a million distinct values."""
    text = pa.array(values.astype(str), type=pa.large_string())
    text = pc.utf8_lower(pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"\s+", " "))
    return pd.Index(pd.array(text, dtype="str"))


def spelling_groups(counts: pd.Series) -> list[dict[str, Any]]:
    """Groups of distinct spellings of one normalised text, most frequent spelling first.

    ``counts``: value counts of a text column. Only keys with two or more spellings.
    """
    if counts.empty:
        return []
    keys = normalized_keys(counts.index)
    table = pd.DataFrame({"key": keys, "value": counts.index.astype(str), "count": counts.values})
    spellings = table.groupby("key", sort=False)["value"].transform("size")
    table = table[spellings.to_numpy() > 1]
    groups = []
    for key, rows in table.groupby("key", sort=True):
        ordered = rows.sort_values(["count", "value"], ascending=[False, True])
        variants = [
            {"value": value, "count": int(count)}
            for value, count in zip(ordered["value"], ordered["count"], strict=True)
        ]
        groups.append({"key": str(key), "variants": variants})
    return groups


def inconsistent_spelling_share(groups: list[dict[str, Any]], non_missing: int) -> float:
    """Rows not in their group's most frequent spelling ÷ non-missing."""
    off = sum(
        sum(int(v["count"]) for v in variants[1:])
        for variants in (group["variants"] for group in groups)
    )
    return share(off, non_missing)


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def mixed_type_share(counts: pd.Series) -> float:
    """In a text column, the minority type's share: numbers among words or words among
    numbers. Placeholders are neither (they are counted as placeholders)."""
    if counts.empty:
        return 0.0
    text = pd.Index(counts.index.astype(str)).str.strip()
    numeric = np.asarray(text.str.fullmatch(_NUMBER.pattern), dtype=bool)
    placeholder = is_placeholder(counts.index)
    weights = counts.to_numpy()
    numbers = int(weights[numeric & ~placeholder].sum())
    words = int(weights[~numeric & ~placeholder].sum())
    return share(min(numbers, words), int(weights.sum()))


def unit_outlier_share(ordered: np.ndarray) -> float:
    """Positive values more than 100× above the upper quartile of the positive values ÷
    non-missing: a unit mix-up inflates values (cents in a dollar column, grams in a kilogram
    one). Only the upper side: small values near 0 are common and would be flagged falsely.
    ``ordered``: the non-missing values, sorted ascending."""
    if ordered.size == 0:
        return 0.0
    positive = ordered[np.searchsorted(ordered, 0, side="right") :]
    if positive.size == 0:
        return 0.0
    (q3,) = sorted_quantiles(positive, (0.75,))
    return share(count_above(positive, q3 * UNIT_FACTOR), ordered.size)


# ---------------------------------------------------------------- distribution
# Numeric metrics take the non-missing values sorted ascending ("ordered"): one sort (about
# 13 ms per million values) turns quantiles, distinct counts and threshold counts into
# index arithmetic and binary searches.


def count_below(ordered: np.ndarray, bound: float) -> int:
    return int(np.searchsorted(ordered, bound, side="left"))


def count_above(ordered: np.ndarray, bound: float) -> int:
    return int(ordered.size - np.searchsorted(ordered, bound, side="right"))


def sorted_quantiles(ordered: np.ndarray, probs: Sequence[float]) -> list[float]:
    """numpy's default ("linear", Hyndman & Fan type 7) quantiles of sorted values."""
    if ordered.size == 0:
        return []
    position = np.asarray(probs, dtype=float) * (ordered.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    fraction = position - low
    values = ordered[low] + fraction * (ordered[high] - ordered[low])
    return [float(v) for v in values]


def distinct_sorted(ordered: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(ordered))) + 1 if ordered.size else 0


def skewness(values: np.ndarray) -> float | None:
    """Fisher-Pearson g1 = m3 / m2^1.5 (scipy.stats.skew with bias=True); None for fewer than
    3 values or no spread."""
    if values.size < 3:
        return None
    centred = values - values.mean()
    squared = centred * centred
    m2 = float(squared.mean())
    if m2 <= 0 or m2 < 1e-14 * float(np.mean(values * values)):  # constant up to rounding
        return None
    m3 = float(np.dot(squared, centred)) / values.size
    return m3 / m2**1.5


def iqr_outlier_share(ordered: np.ndarray, q1: float, q3: float, k: float = 1.5) -> float | None:
    """None when the IQR is 0: the fences collapse onto one value and would call every other
    value an outlier (a 0/1 column, a sentinel such as -1 in most rows)."""
    iqr = q3 - q1
    if iqr <= 0:
        return None
    outside = count_below(ordered, q1 - k * iqr) + count_above(ordered, q3 + k * iqr)
    return share(outside, ordered.size)


def robust_z_outlier_share(ordered: np.ndarray, median: float) -> float:
    if ordered.size == 0:
        return 0.0
    deviations = np.abs(ordered - median)
    scale = MAD_TO_SIGMA * float(np.median(deviations))
    if scale == 0:
        scale = MEANAD_TO_SIGMA * float(deviations.mean())
    if scale == 0:
        return 0.0
    limit = ROBUST_Z_THRESHOLD * scale
    return share(
        count_below(ordered, median - limit) + count_above(ordered, median + limit), ordered.size
    )

"""One column's profile: its metrics, summary statistics, chart data and the cell counts the
scores are made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.preprocessing.columns import ColumnKind
from workers.preprocessing.quality import metrics as m
from workers.preprocessing.quality.temporal import (
    BREAK_MAX_LEVELS,
    month_index,
    month_table,
    period_breaks,
)

TOP_VALUES = 20
HISTOGRAM_BINS = 20
STAT_PROBS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999, 1.0)
STAT_NAMES = ("min", "p01", "p25", "median", "p75", "p99", "p999", "max")


@dataclass(frozen=True)
class ColumnRules:
    """What the caller declared about a column (validity checks)."""

    declared_type: str | None = None
    low: float | None = None
    high: float | None = None
    non_negative: bool = False


@dataclass(frozen=True)
class TimeAxis:
    """Shared by every column: the reference time and each row's month (for period breaks)."""

    as_of: np.datetime64
    months: np.ndarray | None = None  # month offset per row, -1 where the time is missing
    first_month: np.datetime64 | None = None
    per_month: np.ndarray | None = None  # rows per month

    @classmethod
    def of(cls, as_of: np.datetime64, times: np.ndarray | None) -> TimeAxis:
        if times is None or np.isnat(times).all():
            return cls(as_of=as_of)
        first_month, months = month_index(times)
        per_month = np.bincount(months[months >= 0])
        return cls(as_of=as_of, months=months, first_month=first_month, per_month=per_month)


@dataclass
class ColumnProfile:
    name: str
    kind: ColumnKind
    dtype: str
    metrics: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    histogram: dict[str, Any] | None = None
    top_values: list[dict[str, Any]] | None = None
    other_count: int = 0
    spelling_groups: list[dict[str, Any]] = field(default_factory=list)
    period_breaks: list[dict[str, Any]] = field(default_factory=list)
    non_negative: bool = False  # checked against the non-negative rule
    # Cell counts behind the scores.
    missing: int = 0
    placeholders: int = 0
    invalid: int = 0
    validity_checked: bool = False
    inconsistent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "metrics": self.metrics,
            "stats": self.stats,
            "histogram": self.histogram,
            "top_values": self.top_values,
            "other_count": self.other_count,
            "spelling_groups": self.spelling_groups,
            "period_breaks": self.period_breaks,
        }


def profile_column(
    series: pd.Series,
    kind: ColumnKind,
    rules: ColumnRules,
    axis: TimeAxis,
    high_cardinality: int,
) -> ColumnProfile:
    profile = ColumnProfile(
        name=str(series.name),
        kind=kind,
        dtype=str(series.dtype),
        non_negative=rules.non_negative and kind == "numeric",
    )
    rows = len(series)
    missing_mask = series.isna().to_numpy()
    profile.missing = int(missing_mask.sum())
    profile.metrics["missing_share"] = m.share(profile.missing, rows)
    if kind == "numeric":
        _numeric(profile, series, rules)
    elif kind == "timestamp":
        _timestamp(profile, series, axis)
    else:
        _categorical(profile, series, kind, high_cardinality, axis, missing_mask)
    _declared_type(profile, series, rules)
    if kind != "categorical" and axis.per_month is not None and 0 < profile.missing < rows:
        # Numbers and timestamps break by going missing for a while.
        assert axis.months is not None
        missing_rows = axis.months[missing_mask]
        missing = np.bincount(missing_rows[missing_rows >= 0], minlength=axis.per_month.size)
        table = np.column_stack([axis.per_month - missing, missing])
        profile.period_breaks = _breaks(
            axis, table, ["not missing", "(missing)"], only={1}, derived_check=False
        )
    return profile


def _distinct(profile: ColumnProfile, distinct: int, non_missing: int) -> None:
    profile.metrics.update(
        distinct_count=distinct,
        distinct_share=m.distinct_share(distinct, non_missing),
        is_constant=m.is_constant(distinct),
    )


def _numeric(profile: ColumnProfile, series: pd.Series, rules: ColumnRules) -> None:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    ordered = np.sort(values)  # NaN sorts last
    ordered = ordered[: ordered.size - profile.missing]
    _distinct(profile, m.distinct_sorted(ordered), ordered.size)
    if ordered.size == 0:
        return
    stats: dict[str, Any] = dict(
        zip(STAT_NAMES, m.sorted_quantiles(ordered, STAT_PROBS), strict=True)
    )
    stats["mean"] = float(ordered.mean())
    stats["std"] = float(ordered.std(ddof=1)) if ordered.size > 1 else 0.0
    profile.stats = stats
    q1, median, q3 = stats["p25"], stats["median"], stats["p75"]
    declared_range = rules.low is not None or rules.high is not None
    out_of_range = m.out_of_range_count(ordered, rules.low, rules.high)
    negative = m.count_below(ordered, 0.0)
    unit = m.unit_outlier_share(ordered)
    extreme = m.iqr_outlier_share(ordered, q1, q3, k=3.0)
    profile.metrics.update(
        skewness=m.skewness(ordered),
        iqr_outlier_share=m.iqr_outlier_share(ordered, q1, q3),
        extreme_outlier_share=extreme,
        robust_z_outlier_share=m.robust_z_outlier_share(ordered, median),
        negative_share=m.share(negative, ordered.size),
        unit_outlier_share=unit,
        out_of_range_share=m.share(out_of_range, ordered.size) if declared_range else None,
    )
    if rules.non_negative:
        # Negative values below a declared min are out of range already: count them once.
        below_min = m.count_below(ordered, min(rules.low, 0.0)) if rules.low is not None else 0
        out_of_range += negative - below_min
    profile.invalid += out_of_range
    profile.validity_checked |= rules.non_negative or declared_range
    profile.inconsistent += round(unit * ordered.size)
    profile.histogram = _histogram(ordered, stats, clip=bool(extreme))


def _histogram(ordered: np.ndarray, stats: dict[str, Any], clip: bool) -> dict[str, Any]:
    """Equal-width bins; heavy tails would squash it into one bar, so when there are extreme
    outliers it spans p01..p99 and the edge bins hold the tails (said by ``clipped``)."""
    low, high = (stats["p01"], stats["p99"]) if clip else (stats["min"], stats["max"])
    if high <= low:
        low, high, clip = stats["min"], stats["max"], False
    if high <= low:
        high = low + 1.0  # one distinct value: one full bin
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    cuts = np.searchsorted(ordered, edges[1:-1], side="left")
    counts = np.diff(np.concatenate(([0], cuts, [ordered.size])))
    return {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "clipped": clip,
    }


def _timestamp(profile: ColumnProfile, series: pd.Series, axis: TimeAxis) -> None:
    values = as_utc_naive(series)
    values = values[~np.isnat(values)]
    _distinct(profile, int(pd.unique(values).size), values.size)
    if values.size == 0:
        return
    future = int((values > axis.as_of).sum())
    profile.metrics["future_share"] = m.share(future, values.size)
    profile.invalid += future
    profile.validity_checked = True
    first, last = values.min(), values.max()
    profile.stats = {"min": iso(first), "max": iso(last)}
    as_int = values.astype("datetime64[s]").astype(np.int64)
    counts, edges = np.histogram(as_int, bins=HISTOGRAM_BINS)
    profile.histogram = {
        "edges": [iso(np.datetime64(int(e), "s")) for e in edges],
        "counts": [int(c) for c in counts],
        "clipped": False,
    }


def _categorical(
    profile: ColumnProfile,
    series: pd.Series,
    kind: ColumnKind,
    high_cardinality: int,
    axis: TimeAxis,
    missing_mask: np.ndarray,
) -> None:
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(uniques)), index=uniques)
    non_missing = int(counts.sum())
    distinct = len(counts)
    high = kind == "categorical" and distinct > high_cardinality
    _distinct(profile, distinct, non_missing)
    profile.metrics["high_cardinality"] = high
    profile.top_values, profile.other_count = _top_values(counts)
    if kind != "categorical":
        return
    profile.placeholders = int(counts[m.is_placeholder(counts.index)].sum())
    mixed = m.mixed_type_share(counts)
    profile.metrics.update(
        placeholder_share=m.share(profile.placeholders, len(series)),
        mixed_type_share=mixed,
    )
    profile.inconsistent += round(mixed * non_missing)
    if high:
        return  # spellings and breaks of an id-like column say nothing; too costly to list
    profile.spelling_groups = m.spelling_groups(counts)
    spelling = m.inconsistent_spelling_share(profile.spelling_groups, non_missing)
    profile.metrics["inconsistent_spelling_share"] = spelling
    profile.inconsistent += round(spelling * non_missing)
    if axis.per_month is not None and len(uniques) < BREAK_MAX_LEVELS:
        assert axis.months is not None
        labels = [str(u) for u in uniques] + ["(missing)"]
        row_codes = np.where(missing_mask, len(uniques), codes)
        table = month_table(axis.months, row_codes, axis.per_month.size, len(labels))
        profile.period_breaks = _breaks(axis, table, labels)


def _top_values(counts: pd.Series) -> tuple[list[dict[str, Any]], int]:
    """The 20 most frequent values, ties broken by value (deterministic), and the rest's rows."""
    if counts.empty:
        return [], 0
    threshold = counts.nlargest(TOP_VALUES, keep="all").min()
    top = counts[counts >= threshold]
    table = pd.DataFrame({"value": top.index.astype(str), "count": top.to_numpy()})
    table = table.sort_values(["count", "value"], ascending=[False, True]).head(TOP_VALUES)
    values = [
        {"value": v, "count": int(c)} for v, c in zip(table["value"], table["count"], strict=True)
    ]
    return values, int(counts.sum()) - sum(v["count"] for v in values)


def _declared_type(profile: ColumnProfile, series: pd.Series, rules: ColumnRules) -> None:
    declared = rules.declared_type
    if declared is None:
        return
    if declared in ("numeric", "integer"):
        conformance = m.numeric_conformance(series, integer=declared == "integer")
    elif declared == "timestamp":
        conformance = m.timestamp_conformance(series)
    elif declared == "boolean":
        conformance = m.boolean_conformance(series)
    else:
        profile.metrics["type_conformance"] = 1.0
        return  # any value can be read as text: nothing to fail, nothing to score
    profile.metrics["type_conformance"] = conformance
    non_missing = len(series) - profile.missing
    # A value of the wrong type was not range-checked, so the two never count one cell twice.
    profile.invalid += round((1 - conformance) * non_missing)
    profile.validity_checked = True


def _breaks(
    axis: TimeAxis,
    table: np.ndarray,
    labels: list[str],
    only: set[int] | None = None,
    derived_check: bool = True,
) -> list[dict[str, Any]]:
    assert axis.first_month is not None
    return [
        {
            "start": str(axis.first_month + b.start),
            "end": str(axis.first_month + b.end),
            "value": b.value,
            "share": b.share,
            "rows": b.rows,
            "elsewhere_share": b.elsewhere_share,
        }
        for b in period_breaks(table, labels, derived_check)
        if only is None or labels.index(b.value) in only
    ]


def as_utc_naive(series: pd.Series) -> np.ndarray:
    """datetime64[ns] in UTC without a zone (naive values are taken as UTC)."""
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[ns]")


def iso(value: np.datetime64) -> str:
    return str(np.datetime_as_string(value, unit="s")) + "Z"

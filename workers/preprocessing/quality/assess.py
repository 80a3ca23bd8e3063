"""assess(frame, options) -> the quality report: a JSON-able dict, the same for the same input."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from workers.preprocessing.columns import column_kinds
from workers.preprocessing.quality import metrics as m
from workers.preprocessing.quality import temporal as t
from workers.preprocessing.quality.profile import (
    ColumnProfile,
    ColumnRules,
    TimeAxis,
    as_utc_naive,
    iso,
    profile_column,
)
from workers.preprocessing.quality.recommend import findings_and_recommendations
from workers.preprocessing.quality.scores import Scores, score

REPORT_VERSION = 1
# Numeric columns that must not be negative unless the caller says otherwise.
AMOUNT_NAME = re.compile(
    r"(?:^|[^a-z])(amount|value|price|revenue|spend|cost|sales|quantity|qty|number_of|count)"
    r"(?:$|[^a-z])",
    re.I,
)  # name parts only: `dollar_value`, `number_of_cds`; not `discount` or `account_id`
# Column work releases the GIL in numpy/pandas; two threads use the machine's two cores.
THREADS = 2

Progress = Callable[[str, float, float | None, str], None]


class AssessmentError(ValueError):
    """The table cannot be assessed as asked (a stable ``code`` says why)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AssessOptions:
    as_of: datetime
    time_column: str | None = None
    key_columns: list[str] = field(default_factory=list)
    declared_types: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    non_negative: list[str] | None = None
    freshness_half_life_days: float = 30.0
    high_cardinality: int = 1000


def assess(
    frame: pd.DataFrame,
    options: AssessOptions,
    dataset: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Profile every column, the table and its time axis; score; recommend."""
    if frame.shape[0] == 0:
        raise AssessmentError("dataset_empty", "the dataset has no rows: nothing to assess")
    kinds = column_kinds(frame)
    _check_columns(frame, options, kinds)
    time_column = _time_column(options, kinds)
    as_of = np.datetime64(options.as_of.astimezone(UTC).replace(tzinfo=None), "ns")
    non_negative = _non_negative(options, kinds)
    times = as_utc_naive(frame[time_column]) if time_column is not None else None
    axis = TimeAxis.of(as_of, times)

    def one(name: str) -> ColumnProfile:
        low, high = options.ranges.get(name, (None, None))
        rules = ColumnRules(
            declared_type=options.declared_types.get(name),
            low=low,
            high=high,
            non_negative=name in non_negative,
        )
        return profile_column(frame[name], kinds[name], rules, axis, options.high_cardinality)

    names = [str(c) for c in frame.columns]
    profiles: list[ColumnProfile] = []
    with ThreadPoolExecutor(THREADS) as pool:
        for done, profile in enumerate(pool.map(one, names), start=1):
            profiles.append(profile)
            if progress:
                progress("columns", done, len(names), f"profile: column {done}/{len(names)}")
    table = _table_facts(frame, options.key_columns, _most_distinct(profiles))
    time_facts = _time_facts(times, as_of, time_column) if times is not None else None
    scores: Scores = score(profiles, table, time_facts, options.freshness_half_life_days)
    findings, recommendations = findings_and_recommendations(
        frame, profiles, table, time_facts, options
    )
    return {
        "report_version": REPORT_VERSION,
        "dataset": dataset or {},
        "as_of": options.as_of.astimezone(UTC).isoformat(),
        "config": {
            "time_column": time_column,
            "key_columns": list(options.key_columns),
            "declared_types": dict(sorted(options.declared_types.items())),
            "ranges": {k: list(v) for k, v in sorted(options.ranges.items())},
            "non_negative": sorted(non_negative),
            "freshness_half_life_days": options.freshness_half_life_days,
            "high_cardinality": options.high_cardinality,
        },
        "scores": scores.as_dict(),
        "table": table,
        "columns": [p.as_dict() for p in profiles],
        "time": time_facts,
        "findings": findings,
        "recommendations": recommendations,
        "metric_definitions": dict(m.DEFINITIONS),
    }


def _check_columns(frame: pd.DataFrame, options: AssessOptions, kinds: Mapping[str, str]) -> None:
    named = (
        set(options.key_columns)
        | set(options.declared_types)
        | set(options.ranges)
        | set(options.non_negative or [])
        | ({options.time_column} if options.time_column else set())
    )
    unknown = sorted(named - {str(c) for c in frame.columns})
    if unknown:
        available = ", ".join(str(c) for c in list(frame.columns)[:20])
        raise AssessmentError(
            "column_missing",
            f"column(s) {', '.join(map(repr, unknown))} not in the dataset; it has: {available}",
        )
    not_numeric = sorted(
        name
        for name in set(options.ranges) | set(options.non_negative or [])
        if kinds[name] != "numeric"
    )
    if not_numeric:
        raise AssessmentError(
            "column_type_mismatch",
            f"ranges and non_negative apply to numeric columns; {', '.join(not_numeric)} "
            f"hold {', '.join(sorted({kinds[n] for n in not_numeric}))} values (declare the "
            "column numeric at ingest if it holds numbers)",
        )


def _time_column(options: AssessOptions, kinds: Mapping[str, str]) -> str | None:
    if options.time_column is not None:
        if kinds[options.time_column] != "timestamp":
            raise AssessmentError(
                "column_type_mismatch",
                f"time_column {options.time_column!r} holds {kinds[options.time_column]} "
                "values, not timestamps; ingest it with dtypes {"
                f'"{options.time_column}": "timestamp"}} or name another column',
            )
        return options.time_column
    return next((name for name, kind in kinds.items() if kind == "timestamp"), None)


def _non_negative(options: AssessOptions, kinds: Mapping[str, str]) -> set[str]:
    if options.non_negative is not None:
        return set(options.non_negative)
    return {n for n, k in kinds.items() if k == "numeric" and AMOUNT_NAME.search(n)}


def _most_distinct(profiles: list[ColumnProfile], count: int = 3) -> list[str]:
    ranked = sorted(profiles, key=lambda p: (-p.metrics.get("distinct_count", 0), p.name))
    return [p.name for p in ranked[:count]]


def _table_facts(frame: pd.DataFrame, keys: list[str], probe: list[str]) -> dict[str, Any]:
    rows, columns = frame.shape
    missing_cells = int(frame.isna().to_numpy().sum())
    duplicate_rows, duplicate_row_share = m.duplicate_row_share(frame, probe)
    duplicate_keys, duplicate_key_share = m.duplicate_key_share(frame, keys)
    return {
        "rows": int(rows),
        "columns": int(columns),
        "missing_cells": missing_cells,
        "missing_cell_share": m.share(missing_cells, rows * columns),
        "duplicate_rows": duplicate_rows,
        "duplicate_row_share": duplicate_row_share,
        "duplicate_keys": duplicate_keys,
        "duplicate_key_share": duplicate_key_share,
        "key_columns": list(keys),
    }


def _time_facts(times: np.ndarray, as_of: np.datetime64, column: str | None) -> dict[str, Any]:
    valid = times[~np.isnat(times)]
    if valid.size == 0:
        return {"column": column, "first": None, "last": None, "daily": None}
    # Future timestamps are invalid (reported there); the daily series stops at as_of.
    past = valid[valid <= as_of]
    first_day, counts = t.daily_counts(past if past.size else valid)
    last = valid.max()
    gap, gap_start = t.largest_gap(counts)
    trend = t.trend(counts)
    points = t.change_points(counts)
    cuts = [0, *points, counts.size]
    means = [float(counts[a:b].mean()) for a, b in itertools.pairwise(cuts)]
    return {
        "column": column,
        "first": iso(valid.min()),
        "last": iso(last),
        "last_event_age_days": float((as_of - last) / np.timedelta64(1, "D")),
        "span_days": int(counts.size),
        "missing_day_share": t.missing_day_share(counts),
        "largest_gap_days": gap,
        "largest_gap_start": str(first_day + gap_start) if gap else None,
        "largest_gap_end": str(first_day + gap_start + gap - 1) if gap else None,
        "daily": {"start": str(first_day), "counts": [int(c) for c in counts]},
        "trend": {
            "slope_per_year": trend.slope_per_year,
            "kendall_tau": trend.kendall_tau,
            "p_value": trend.p_value,
            "direction": trend.direction,
        },
        "weekly_seasonality_strength": t.weekly_strength(first_day, counts),
        "annual_seasonality_strength": t.annual_strength(first_day, counts),
        "change_points": [
            {"date": str(first_day + p), "before_mean": means[i], "after_mean": means[i + 1]}
            for i, p in enumerate(points)
        ],
    }


def report_json(report: dict[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, NaN/inf as null): the same report, the same bytes."""
    return json.dumps(
        _finite(report), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value

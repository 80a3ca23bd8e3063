"""Reference statistics of the training data and holdout scores, for monitoring to compare
later batches against (drift per feature, shift of the score distribution).

The result is plain JSON: no NaN or infinity anywhere, None where a statistic is undefined
(the spread of one value, anything of an all-missing column).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MAX_DISTINCT = 1000  # "distinct" is capped: beyond it the exact number says nothing more
VALUE_BINS = 20  # numeric columns with at most this many values get one bin per value
SCORE_BINS = 20


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _quantiles(values: np.ndarray, quantiles: int) -> list[float] | None:
    if len(values) == 0:
        return None
    return [float(q) for q in np.quantile(values, np.linspace(0.0, 1.0, quantiles + 1))]


def _as_float(column: pd.Series) -> np.ndarray:
    """Floats with NaN for missing; bools become 1.0/0.0. Infinities count as missing:
    they have no place in a quantile sketch or in JSON."""
    values = column.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    values[~np.isfinite(values)] = np.nan
    return values


def _numeric(column: pd.Series, quantiles: int) -> dict[str, Any]:
    values = _as_float(column)
    present = values[~np.isnan(values)]
    rows, count = len(values), len(present)
    distinct, frequency = np.unique(present, return_counts=True)
    stats: dict[str, Any] = {
        "kind": "numeric",
        "count": count,
        "missing_share": (rows - count) / rows if rows else None,
        "mean": _number(present.mean()) if count else None,
        "std": _number(present.std(ddof=1)) if count > 1 else None,
        "min": float(present.min()) if count else None,
        "max": float(present.max()) if count else None,
        "quantiles": _quantiles(present, quantiles),
        "distinct": min(len(distinct), MAX_DISTINCT),
    }
    if 0 < len(distinct) <= VALUE_BINS:
        stats["values"] = {
            str(float(value)): int(n) / count for value, n in zip(distinct, frequency, strict=True)
        }
    return stats


def _categorical(column: pd.Series, top_categories: int) -> dict[str, Any]:
    rows = len(column)
    present = column.dropna().astype(str)
    count = len(present)
    # Most frequent first; equal counts by value, so the same data gives the same top list.
    counted = present.value_counts(sort=False)
    ranked = sorted(counted.items(), key=lambda item: (-item[1], item[0]))
    top = ranked[:top_categories]
    return {
        "kind": "categorical",
        "count": count,
        "missing_share": (rows - count) / rows if rows else None,
        "frequencies": {str(value): int(n) / count for value, n in top},
        "other_share": sum(int(n) for _, n in ranked[top_categories:]) / count if count else None,
        "distinct": len(ranked),
    }


def _scores(scores: np.ndarray, quantiles: int) -> dict[str, Any]:
    values = np.asarray(scores, dtype=float)
    values = values[np.isfinite(values)]
    # Probabilities bin on [0, 1]; predicted values (regression, segments) on their range.
    probabilities = len(values) == 0 or (values.min() >= 0.0 and values.max() <= 1.0)
    bounds = (0.0, 1.0) if probabilities else (float(values.min()), float(values.max()))
    counts, edges = np.histogram(values, bins=SCORE_BINS, range=bounds)
    return {
        "count": len(values),
        "quantiles": _quantiles(values, quantiles),
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "mean": float(values.mean()) if len(values) else None,
    }


def reference_statistics(
    X: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    scores: np.ndarray,
    *,
    quantiles: int = 100,
    top_categories: int = 50,
) -> dict[str, Any]:
    """Per-feature distributions of ``X`` and the distribution of the holdout ``scores``.

    Shares are among non-missing values. ``quantiles`` sets the sketch resolution
    (``quantiles + 1`` cut points from minimum to maximum) for features and scores alike.
    """
    features: dict[str, Any] = {name: _numeric(X[name], quantiles) for name in numeric}
    features.update({name: _categorical(X[name], top_categories) for name in categorical})
    return {"rows": len(X), "features": features, "scores": _scores(scores, quantiles)}

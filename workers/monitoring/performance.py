"""Concept drift: a model's metric on a window's labelled rows against its holdout baseline.

What it measures: the metric the version stored for its holdout (``ModelVersion.metrics``,
see ``workers/training/evaluation*.py``), recomputed on the rows of a monitoring window
whose labels have arrived, and the *drop* from the baseline.

Metrics and the sign of the drop (a positive drop is always "worse"):

==========  ===========  =============  ==========================================
problem     metric       better is      drop
==========  ===========  =============  ==========================================
binary      roc_auc      higher         baseline - value
binary      accuracy     higher         baseline - value (predicted 1: score >= threshold)
multiclass  accuracy     higher         baseline - value
regression  r2           higher         baseline - value
regression  mae, rmse    lower          (value - baseline) / baseline (relative increase)
==========  ===========  =============  ==========================================

The error metrics (mae, rmse) are in the target's units, so an absolute ``accuracy_drop``
would mean something different for every model; their drop is the *relative* increase of
the error instead (``accuracy_drop = 0.05``: 5% more error than on the holdout). A baseline
error of 0 gives no scale and is treated as no baseline.

Interval: a 95% percentile bootstrap interval on ``value`` (the window's metric, not the
drop), ``BOOTSTRAP_RESAMPLES`` = 500 resamples of the labelled rows with a fixed seed, so
the same window always gives the same interval. Each resample is a vector of row counts
(how often each row was drawn); every metric is then a weighted sum over the rows, so the
resamples are computed as matrix products in chunks of at most ``CHUNK_CELLS`` counts
(cost ``O(500 * n)``). ROC AUC of a resample is the Mann-Whitney statistic over groups of
tied scores (ties count one half), as ``sklearn.metrics.roc_auc_score``. A resample whose
metric is undefined (one class only for AUC, a constant target for R²) is left out. A
window of more than ``BOOTSTRAP_MAX_ROWS`` labelled rows is bootstrapped on a seeded
subsample of that many rows and the spread scaled by sqrt(m / n) (the metrics here are
root-n consistent), which keeps a million-row window's interval under a second.
The bootstrap was chosen over analytic intervals (Wilson, Hanley-McNeil) because it
serves every metric the same way; ``tests/unit/test_monitoring_performance.py`` checks its
coverage by simulation.

Decision, in this order:

* ``insufficient_data``: fewer than ``min_rows`` labelled rows (or the metric is undefined
  on them, e.g. AUC with a single class). Value and drop are still reported when defined,
  the interval is not; never drift.
* ``no_baseline``: the version has no (finite) baseline for the metric. Value and interval
  are reported.
* ``drifted``: ``drop > accuracy_drop`` *and* the interval excludes the baseline on the
  bad side (``ci_high < baseline`` when higher is better, ``ci_low > baseline`` when lower
  is better). The baseline is taken as fixed; its own holdout noise is not modelled.
* ``ok`` otherwise: no drop, a drop within the noise, or a significant drop smaller than
  ``accuracy_drop``.

A "labelled row" has a non-missing ``y_true`` and a non-missing prediction; other rows are
ignored (labels arrive late, so most windows are partly labelled).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Problem = Literal["binary", "multiclass", "regression"]
Status = Literal["ok", "drifted", "insufficient_data", "no_baseline"]

BOOTSTRAP_RESAMPLES = 500
# Above this many labelled rows the bootstrap runs on a subsample (``_subsample_interval``):
# 500 resamples of a million rows cost 20 s, of 20,000 rows under half a second.
BOOTSTRAP_MAX_ROWS = 20_000
CONFIDENCE = 0.95
CHUNK_CELLS = 2_000_000  # row counts per chunk of resamples (16 MB as int64)

METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "accuracy"),
    "multiclass": ("accuracy",),
    "regression": ("r2", "mae", "rmse"),
}
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


@dataclass(frozen=True)
class PerformanceCheck:
    metric: str
    baseline: float | None  # the holdout metric stored with the version
    value: float | None  # the metric on the window's labelled rows
    drop: float | None  # positive = worse (see the module docstring for the sign per metric)
    ci_low: float | None  # 95% bootstrap interval on ``value`` (not on the drop)
    ci_high: float | None
    n: int  # labelled rows
    min_rows: int
    status: Status
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "value": self.value,
            "drop": self.drop,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "min_rows": self.min_rows,
            "status": self.status,
            "message": self.message,
        }


# ---------------------------------------------------------------- weighted metrics
# Every statistic takes row weights ``w`` (resamples x rows; all ones for the sample itself)
# and returns one value per resample, NaN where the metric is undefined.

Statistic = Callable[[np.ndarray], np.ndarray]


def _mean_of(values: np.ndarray) -> Statistic:
    n = values.size
    return lambda w: (w @ values) / n


def _rmse(squared_errors: np.ndarray) -> Statistic:
    n = squared_errors.size
    return lambda w: np.sqrt((w @ squared_errors) / n)


def _r2(y: np.ndarray, pred: np.ndarray) -> Statistic:
    n = y.size
    squared_errors = (y - pred) ** 2
    # Centre first: sum w (y - m)^2 = sum w y^2 - (sum w y)^2 / n loses less precision.
    centred = y - y.mean()

    def statistic(w: np.ndarray) -> np.ndarray:
        total = w @ (centred * centred) - (w @ centred) ** 2 / n
        with np.errstate(divide="ignore", invalid="ignore"):
            result = 1.0 - (w @ squared_errors) / total
        scale = max(float(np.dot(centred, centred)), 1e-300)
        return np.where(total > 1e-12 * scale, result, np.nan)

    return statistic


def _roc_auc(y: np.ndarray, score: np.ndarray) -> Statistic:
    """Mann-Whitney AUC with weights: sum over tie groups g of P_g (N_below_g + N_g / 2),
    divided by P * N (P, N: total positive and negative weight)."""
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    positive = y[order].astype(np.float64)
    negative = 1.0 - positive
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])

    def statistic(w: np.ndarray) -> np.ndarray:
        ws = w[:, order].astype(np.float64)
        pos = np.add.reduceat(ws * positive, starts, axis=1)
        neg = np.add.reduceat(ws * negative, starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (pos * (below + 0.5 * neg)).sum(axis=1) / pairs
        return np.where(pairs > 0, auc, np.nan)

    return statistic


def _statistic(
    problem: Problem, metric: str, y: np.ndarray, scores: np.ndarray, threshold: float
) -> Statistic:
    if problem == "binary":
        if metric == "roc_auc":
            return _roc_auc(y, scores)
        return _mean_of(((scores >= threshold).astype(np.float64) == y).astype(np.float64))
    if problem == "multiclass":
        predicted = scores.argmax(axis=1) if scores.ndim == 2 else scores
        return _mean_of((predicted == y).astype(np.float64))
    if metric == "r2":
        return _r2(y, scores)
    if metric == "mae":
        return _mean_of(np.abs(y - scores))
    return _rmse((y - scores) ** 2)


def _bootstrap(statistic: Statistic, n: int, resamples: int, seed: int) -> np.ndarray:
    """The statistic on ``resamples`` resamples of the n rows (with replacement)."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, CHUNK_CELLS // n))
    values = []
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        drawn = rng.integers(0, n, size=(k, n)) + (np.arange(k) * n)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=k * n).reshape(k, n)
        values.append(statistic(weights))
    return np.concatenate(values)


def _interval(
    statistic: Statistic, n: int, seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float | None, float | None]:
    values = _bootstrap(statistic, n, resamples, seed)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _subsample_interval(
    problem: Problem,
    metric: str,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    value: float,
    seed: int,
) -> tuple[float | None, float | None]:
    """The interval of a big window: bootstrap a seeded subsample of BOOTSTRAP_MAX_ROWS
    rows, then shrink its spread around the subsample's own value by sqrt(m / n), as a
    root-n statistic's spread shrinks, and centre it on the full window's value."""
    n, m = len(y), BOOTSTRAP_MAX_ROWS
    rows = np.sort(np.random.default_rng(seed).choice(n, m, replace=False))
    statistic = _statistic(problem, metric, y[rows], scores[rows], threshold)
    centre = float(statistic(np.ones((1, m)))[0])
    low, high = _interval(statistic, m, seed)
    if low is None or high is None or not math.isfinite(centre):
        return None, None
    shrink = math.sqrt(m / n)
    return value + (low - centre) * shrink, value + (high - centre) * shrink


# ---------------------------------------------------------------- inputs


def _labelled(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    scores = np.asarray(y_score)
    if y.ndim != 1 or scores.ndim not in (1, 2) or len(y) != len(scores):
        raise ValueError(
            f"need 1-D y_true and equally long predictions; got {y.shape} vs {scores.shape}"
        )
    keep = ~np.asarray(pd.isna(y), dtype=bool)
    missing = np.asarray(pd.isna(scores), dtype=bool)
    keep &= ~(missing.any(axis=1) if scores.ndim == 2 else missing)
    if scores.dtype.kind == "f":
        finite = np.isfinite(scores)
        keep &= finite.all(axis=1) if scores.ndim == 2 else finite
    return y[keep], scores[keep]


def _prepared(problem: Problem, y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if problem == "binary":
        if scores.ndim != 1:
            raise ValueError("binary predictions are one score per row: P(class 1)")
        y = y.astype(np.float64)
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("binary y_true must hold 0/1 (or booleans)")
        return y, scores.astype(np.float64)
    if problem == "multiclass":
        if scores.ndim == 2:  # probabilities: column i is class code i
            return y.astype(np.int64), scores.astype(np.float64)
        return y.astype(object), scores.astype(object)
    if scores.ndim != 1:
        raise ValueError("regression predictions are one value per row")
    return y.astype(np.float64), scores.astype(np.float64)


def _check_metric(problem: str, metric: str) -> None:
    if problem not in METRICS:
        raise ValueError(f"unknown problem {problem!r}; expected one of {sorted(METRICS)}")
    if metric not in METRICS[problem]:
        raise ValueError(f"metric {metric!r} is not monitored for {problem}: {METRICS[problem]}")


def _drop(metric: str, baseline: float, value: float) -> float:
    if metric in LOWER_IS_BETTER:
        return (value - baseline) / baseline
    return baseline - value


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


# ---------------------------------------------------------------- the check


def performance_check(
    y_true: Any,
    y_score_or_pred: Any,
    *,
    problem: Problem,
    metric: str,
    baseline: float | None,
    accuracy_drop: float = 0.05,
    min_rows: int = 200,
    threshold: float = 0.5,
    seed: int = 0,
) -> PerformanceCheck:
    """``metric`` of the window's labelled rows against ``baseline`` (see the module docstring).

    ``y_score_or_pred``: P(class 1) for binary; predicted labels (compared with ``y_true``)
    or a rows x classes probability matrix whose column i is class code i (``y_true`` then
    holds the codes) for multiclass; predicted values for regression.
    """
    _check_metric(problem, metric)
    if not accuracy_drop >= 0:
        raise ValueError(f"accuracy_drop must be >= 0; got {accuracy_drop}")
    y, scores = _prepared(problem, *_labelled(y_true, y_score_or_pred))
    n = len(y)
    lower = metric in LOWER_IS_BETTER
    if baseline is not None and (not math.isfinite(baseline) or (lower and baseline <= 0)):
        baseline = None
    else:
        baseline = None if baseline is None else float(baseline)

    value: float | None = None
    statistic: Statistic | None = None
    if n:
        statistic = _statistic(problem, metric, y, scores, threshold)
        point = float(statistic(np.ones((1, n)))[0])
        value = point if math.isfinite(point) else None
    drop = None if baseline is None or value is None else _drop(metric, baseline, value)

    def result(
        status: Status, message: str, low: float | None = None, high: float | None = None
    ) -> PerformanceCheck:
        return PerformanceCheck(
            metric, baseline, value, drop, low, high, n, min_rows, status, message
        )

    if n < min_rows:
        return result(
            "insufficient_data",
            f"{metric}: {n} labelled rows, fewer than the {min_rows} needed; no conclusion",
        )
    if value is None or statistic is None:
        return result(
            "insufficient_data", f"{metric} is undefined on the {n} labelled rows (one class?)"
        )
    if n > BOOTSTRAP_MAX_ROWS:
        low, high = _subsample_interval(problem, metric, y, scores, threshold, value, seed)
    else:
        low, high = _interval(statistic, n, seed)
    shown = f"{metric} {_fmt(value)} (95% CI {_fmt(low)} to {_fmt(high)}, {n} rows)"
    if baseline is None or drop is None:
        return result("no_baseline", f"{shown}; the version has no baseline to compare", low, high)
    unit = " (relative)" if lower else ""
    versus = f"{shown} vs baseline {_fmt(baseline)}: drop {drop:.4g}{unit}"
    significant = (
        (low is not None and low > baseline) if lower else (high is not None and high < baseline)
    )
    if drop > accuracy_drop and significant:
        return result(
            "drifted",
            f"{versus} exceeds {accuracy_drop:g} and the interval excludes the baseline",
            low,
            high,
        )
    if drop > accuracy_drop:
        why = "the interval includes the baseline (within noise)"
    elif significant:
        why = f"significant but within the tolerated {accuracy_drop:g}"
    else:
        why = f"within the tolerated {accuracy_drop:g}"
    return result("ok", f"{versus}; {why}", low, high)

"""Holdout evaluation of a regression model (CLV spend): errors, rank agreement, lift table.

Pure functions on targets ``y`` and predictions ``pred``; every number returned is a plain
Python float or int, with None where a statistic is undefined, so the result is strict JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

DECILES = 10


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def decile_table(y: np.ndarray, pred: np.ndarray, groups: int = DECILES) -> list[dict[str, Any]]:
    """Rows cut into ``groups`` equal-count groups by predicted value, lowest predictions in
    decile 1, with the mean prediction and mean actual of each: the lift table.

    Groups follow the stable rank order of the predictions, so tied predictions are split by
    row order rather than merged, and every group has the same size give or take one row.
    Fewer groups when there are fewer rows than ``groups``.
    """
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    order = np.argsort(pred, kind="stable")
    parts = np.array_split(order, min(groups, len(order))) if len(order) else []
    return [
        {
            "decile": number,
            "rows": len(part),
            "mean_predicted": float(pred[part].mean()),
            "mean_actual": float(y[part].mean()),
        }
        for number, part in enumerate(parts, start=1)
    ]


def _spearman(y: np.ndarray, pred: np.ndarray) -> float | None:
    """Rank correlation; None when either side is constant (no ranking to agree with)."""
    if len(y) < 2 or np.ptp(y) == 0 or np.ptp(pred) == 0:
        return None
    return _number(float(spearmanr(y, pred).statistic))


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE, R², Spearman, the means, the share of zero targets and the decile table of
    one holdout.

    The zero share is reported because CLV spend is zero-heavy: an R² or RMSE reads very
    differently when most customers spend nothing. R² is None for a single row.
    """
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    if y.ndim != 1 or y.shape != pred.shape or len(y) == 0:
        raise ValueError(f"need equally long, non-empty y and pred ({y.shape} vs {pred.shape})")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(pred))):
        raise ValueError("y and pred must be finite (no NaN or infinity)")
    rows = len(y)
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "mae": float(mean_absolute_error(y, pred)),
        "r2": _number(float(r2_score(y, pred))) if rows > 1 else None,
        "spearman": _spearman(y, pred),
        "rows": rows,
        "mean_target": float(y.mean()),
        "mean_prediction": float(pred.mean()),
        "zero_share": float(np.mean(y == 0)),
        "deciles": decile_table(y, pred),
    }

"""The scores a binary model can be tuned and judged on, from true 0/1 labels and P(class 1).

Thresholded metrics cut at 0.5 the way ``predict`` does (class 1 only when its probability
is above 0.5), so a reported accuracy matches the model's own predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
)

THRESHOLD = 0.5
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction
    needs_threshold: bool
    score: Callable[[np.ndarray, np.ndarray], float]  # (y_true 0/1, probability of class 1)


def _labels(proba: np.ndarray) -> np.ndarray:
    return (np.asarray(proba) > THRESHOLD).astype(np.int64)


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(y, proba))


def _pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(average_precision_score(y, proba))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    # labels: a fold that happens to hold one class must still score, not fail
    return float(log_loss(y, proba, labels=[0, 1]))


def _brier(y: np.ndarray, proba: np.ndarray) -> float:
    return float(brier_score_loss(y, proba, pos_label=1))


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(accuracy_score(y, _labels(proba)))


def _f1(y: np.ndarray, proba: np.ndarray) -> float:
    return float(f1_score(y, _labels(proba), zero_division=0.0))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "maximize", False, _roc_auc),
        Metric("pr_auc", "maximize", False, _pr_auc),
        Metric("log_loss", "minimize", False, _log_loss),
        Metric("brier", "minimize", False, _brier),
        Metric("accuracy", "maximize", True, _accuracy),
        Metric("f1", "maximize", True, _f1),
    )
}


def metric_named(name: str) -> Metric:
    """The metric, or a ValueError listing the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}") from None

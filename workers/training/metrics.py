"""The scores a model can be tuned and judged on, from true targets and predictions.

The prediction's shape says what it is: a vector of P(class 1) for binary models, an
(n, classes) probability matrix for multiclass models (columns in class-code order), the
predicted values for regression. Binary thresholded metrics cut at 0.5 the way ``predict``
does (class 1 only when its probability is above 0.5); multiclass ones take the most
probable class; so a reported accuracy matches the model's own predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

THRESHOLD = 0.5
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction
    needs_threshold: bool
    score: Callable[[np.ndarray, np.ndarray], float]  # (y_true, prediction)


def _labels(proba: np.ndarray) -> np.ndarray:
    proba = np.asarray(proba)
    if proba.ndim == 2:
        return np.argmax(proba, axis=1)
    return (proba > THRESHOLD).astype(np.int64)


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(y, proba))


def _pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(average_precision_score(y, proba))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    # labels: a fold that happens to lack a class must still score, not fail
    classes = proba.shape[1] if np.ndim(proba) == 2 else 2
    return float(log_loss(y, proba, labels=list(range(classes))))


def _brier(y: np.ndarray, proba: np.ndarray) -> float:
    return float(brier_score_loss(y, proba, pos_label=1))


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(accuracy_score(y, _labels(proba)))


def _f1(y: np.ndarray, proba: np.ndarray) -> float:
    return float(f1_score(y, _labels(proba), zero_division=0.0))


def _macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    return float(f1_score(y, _labels(proba), average="macro", zero_division=0.0))


def _balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(balanced_accuracy_score(y, _labels(proba)))


def _rmse(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(root_mean_squared_error(y, predicted))


def _mae(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(mean_absolute_error(y, predicted))


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(r2_score(y, predicted))


def _spearman(y: np.ndarray, predicted: np.ndarray) -> float:
    """Rank correlation; 0 (no ranking) when either side is constant, where it is undefined."""
    if np.ptp(y) == 0 or np.ptp(predicted) == 0:
        return 0.0
    return float(spearmanr(y, predicted).statistic)


def _silhouette(_y: np.ndarray, _predicted: np.ndarray) -> float:
    raise ValueError(
        "silhouette is scored on the clustering's own space (workers.training.segments)"
    )


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "maximize", False, _roc_auc),
        Metric("pr_auc", "maximize", False, _pr_auc),
        Metric("log_loss", "minimize", False, _log_loss),
        Metric("brier", "minimize", False, _brier),
        Metric("accuracy", "maximize", True, _accuracy),
        Metric("f1", "maximize", True, _f1),
        Metric("macro_f1", "maximize", True, _macro_f1),
        Metric("balanced_accuracy", "maximize", True, _balanced_accuracy),
        Metric("rmse", "minimize", False, _rmse),
        Metric("mae", "minimize", False, _mae),
        Metric("r2", "maximize", False, _r2),
        Metric("spearman", "maximize", False, _spearman),
        Metric("silhouette", "maximize", False, _silhouette),
    )
}


def metric_named(name: str) -> Metric:
    """The metric, or a ValueError listing the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}") from None

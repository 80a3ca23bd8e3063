"""Stratified k-fold cross-validation of one config, reporting after every fold.

The per-fold callback lets the caller hand running means to Optuna and stop a trial that
is going badly (by raising optuna.TrialPruned) without fitting the remaining folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from workers.training.inputs import TrainingData
from workers.training.metrics import metric_named
from workers.training.pipeline import build_pipeline


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) per fold; the same seed gives every trial the same folds,
    so trials are compared on equal terms."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


@dataclass(frozen=True)
class CVResult:
    scores: list[float]
    mean: float
    std: float
    oof: np.ndarray | None  # out-of-fold P(class 1) aligned to y_train, when asked for


def cross_validate(
    config: dict[str, Any],
    data: TrainingData,
    *,
    folds: int,
    metric: str,
    seed: int,
    after_fold: Callable[[int, float], None] | None = None,
    keep_oof: bool = False,
    n_jobs: int = 1,
) -> CVResult:
    """Fit and score ``config`` on each fold of the training rows.

    ``after_fold(k, running_mean)`` runs after fold k (0-based); whatever it raises
    propagates, which is how a pruned trial stops.
    """
    score = metric_named(metric).score
    X, y = data.X_train, data.y_train
    oof = np.full(len(y), np.nan) if keep_oof else None
    scores: list[float] = []
    for k, (train_rows, valid_rows) in enumerate(stratified_folds(y, folds, seed)):
        model = build_pipeline(config, data.numeric, data.categorical, seed, n_jobs)
        model.fit(X.iloc[train_rows], y[train_rows])
        proba = model.predict_proba(X.iloc[valid_rows])[:, 1]
        if oof is not None:
            oof[valid_rows] = proba
        scores.append(score(y[valid_rows], proba))
        if after_fold is not None:
            after_fold(k, float(np.mean(scores)))
    return CVResult(scores=scores, mean=float(np.mean(scores)), std=float(np.std(scores)), oof=oof)

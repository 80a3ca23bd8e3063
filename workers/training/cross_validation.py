"""Cross-validation of one config over the job's folds, reporting after every fold.

The folds come with the training data (``TrainingData.folds``: stratified, k-fold, grouped
or time-ordered with a gap), so every trial, the final refit and the ensembles are scored
on the same rows. The per-fold callback lets the caller hand running means to Optuna and
stop a trial that is going badly (by raising optuna.TrialPruned) without fitting the
remaining folds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from workers.training.inputs import TrainingData
from workers.training.metrics import metric_named
from workers.training.pipeline import ModelSpec, build_pipeline
from workers.training.predict import predictions


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) per fold of a stratified, shuffled k-fold."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


@dataclass(frozen=True)
class CVResult:
    scores: list[float]
    mean: float
    std: float
    # Out-of-fold predictions aligned to y_train (rows no fold validates stay NaN), when
    # asked for; per fold too, since an ensemble's score is computed fold by fold.
    oof: np.ndarray | None
    fold_predictions: list[np.ndarray] | None = None

    @property
    def standard_error(self) -> float:
        return self.std / np.sqrt(len(self.scores)) if self.scores else float("nan")


def empty_oof(data: TrainingData) -> np.ndarray:
    if data.problem == "multiclass":
        return np.full((len(data.y_train), data.n_classes), np.nan)
    return np.full(len(data.y_train), np.nan)


def cross_validate(
    config: dict[str, Any],
    data: TrainingData,
    spec: ModelSpec,
    *,
    metric: str,
    after_fold: Callable[[int, float], None] | None = None,
    keep_oof: bool = False,
) -> CVResult:
    """Fit and score ``config`` on each fold of the training rows.

    ``after_fold(k, running_mean)`` runs after fold k (0-based); whatever it raises
    propagates, which is how a pruned trial stops.
    """
    score = metric_named(metric).score
    X, y = data.X_train, data.y_train
    oof = empty_oof(data) if keep_oof else None
    per_fold: list[np.ndarray] = []
    scores: list[float] = []
    for k, (fit_rows, valid_rows) in enumerate(data.folds):
        model = build_pipeline(config, spec)
        with warnings.catch_warnings():
            # constant columns inside one fold (univariate scores) are expected, not news
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            model.fit(X.iloc[fit_rows], y[fit_rows])
        predicted = predictions(model, X.iloc[valid_rows], data.problem, data.n_classes)
        if oof is not None:
            oof[valid_rows] = predicted
            per_fold.append(predicted)
        scores.append(score(y[valid_rows], predicted))
        if after_fold is not None:
            after_fold(k, float(np.mean(scores)))
    return CVResult(
        scores=scores,
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        oof=oof,
        fold_predictions=per_fold if keep_oof else None,
    )

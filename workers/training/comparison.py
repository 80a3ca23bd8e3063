"""The model against a plain baseline on the same holdout rows, with a paired bootstrap
interval of the difference.

One holdout AUC on ~5,000 rows has a standard error near 0.007, so two single numbers say
little; resampling the rows (the same rows for both models in every resample) gives the
interval of the *difference*, which is what a person deciding between them needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from api_client.train_params import Problem
from workers.training.metrics import metric_named
from workers.training.pipeline import ModelSpec, preparation
from workers.training.predict import predictions

RESAMPLES = 1000
LEVEL = 0.95
BASELINE_METRIC: dict[str, str] = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "spearman",
}


def paired_bootstrap(
    y: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    metric: str,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, float]:
    """metric(first) - metric(second) on all rows and the percentile interval of that
    difference over ``resamples`` paired resamples of the rows (seeded)."""
    score = metric_named(metric).score
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, len(y), size=len(y))
        differences[i] = score(y[rows], first[rows]) - score(y[rows], second[rows])
    tail = (1.0 - level) / 2.0
    low, high = np.nanquantile(differences, [tail, 1.0 - tail])
    return {
        "difference": score(y, first) - score(y, second),
        "low": float(low),
        "high": float(high),
        "level": level,
        "resamples": resamples,
    }


def fit_baseline(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_holdout: pd.DataFrame,
    columns: list[str],
    spec: ModelSpec,
    n_classes: int,
) -> np.ndarray:
    """Holdout predictions of default HistGradientBoosting on ``columns`` only (imputed and
    encoded like the model's inputs)."""
    numeric = [c for c in spec.numeric if c in columns]
    categorical = [c for c in spec.categorical if c in columns]
    plain = ModelSpec(spec.problem, numeric, categorical, seed=spec.seed)
    classify = spec.problem in ("binary", "multiclass")
    default = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    model = Pipeline(
        [("prepare", preparation({}, plain)), ("model", default(random_state=spec.seed))]
    )
    model.fit(X_train, y_train)
    return predictions(model, X_holdout, spec.problem, n_classes)


def compare_with_baseline(
    y: np.ndarray,
    model_predictions: np.ndarray,
    baseline_predictions: np.ndarray,
    columns: list[str],
    problem: Problem,
    seed: int,
) -> dict[str, Any]:
    metric = BASELINE_METRIC[problem]
    score = metric_named(metric).score
    return {
        "baseline": "HistGradientBoosting with scikit-learn's defaults",
        "columns": columns,
        "metric": metric,
        "model": score(y, model_predictions),
        "baseline_score": score(y, baseline_predictions),
        "model_minus_baseline": paired_bootstrap(
            y, model_predictions, baseline_predictions, metric, seed=seed
        ),
    }

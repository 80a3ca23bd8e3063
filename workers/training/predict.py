"""What a fitted model says about rows, in the shape the metrics take (see ``metrics``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from api_client.train_params import Problem


def class_probabilities(model: Any, X: pd.DataFrame, n_classes: int) -> np.ndarray:
    """(rows, n_classes) probabilities in class-code order. A model fitted on rows that
    lacked a class (a time-ordered fold can) gives that class probability 0."""
    proba = np.asarray(model.predict_proba(X), dtype=float)
    known = np.asarray(model.classes_, dtype=np.int64)
    if len(known) == n_classes and np.array_equal(known, np.arange(n_classes)):
        return proba
    full = np.zeros((len(X), n_classes))
    full[:, known] = proba
    return full


def predictions(model: Any, X: pd.DataFrame, problem: Problem, n_classes: int = 0) -> np.ndarray:
    """Binary: P(class 1); multiclass: the probability matrix; regression: the predicted
    values; clustering: the segment of each row."""
    if problem == "binary":
        return class_probabilities(model, X, 2)[:, 1]
    if problem == "multiclass":
        return class_probabilities(model, X, n_classes)
    if problem == "regression":
        return np.asarray(model.predict(X), dtype=float)
    return np.asarray(model.predict(X), dtype=np.int64)

"""One sklearn Pipeline per config: impute and encode the inputs, then the estimator.

Only stock sklearn classes (no FunctionTransformer, no lambdas), so that the fitted model
can be saved with skops and loaded with an explicit allow-list of types. SimpleImputer takes
bool and nullable numeric columns as they are; text columns go through ``model_frame``
first, because the one-hot encoder refuses mixed types (an object column holding 1 and "a",
a category of numbers). Callers apply ``model_frame`` before fit and before predict.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MISSING_CATEGORY = "__missing__"
# A category seen in fewer training rows cannot be learned; such categories (and unseen
# ones at predict time) share one "infrequent" column.
MIN_CATEGORY_ROWS = 5
MAX_CATEGORIES = 20


def model_frame(X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns in table order, with text columns as pandas "str" (missing
    stays missing), so training and scoring data encode alike whatever dtype they came in."""
    inputs = set(numeric) | set(categorical)
    frame = X[[c for c in X.columns if c in inputs]]
    cast = {c: "str" for c in categorical if frame[c].dtype != "str"}
    return frame.astype(cast) if cast else frame


def build_pipeline(
    config: dict[str, Any],
    numeric: list[str],
    categorical: list[str],
    seed: int,
    n_jobs: int = 1,
) -> Pipeline:
    family = config["family"]
    branches: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", add_indicator=True))
        ]
        if family == "logistic_regression":  # trees are scale-free; the linear model is not
            steps.append(("scale", StandardScaler()))
        branches.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        encode = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=MIN_CATEGORY_ROWS,
            max_categories=MAX_CATEGORIES,
            sparse_output=False,
        )
        impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)
        branches.append(
            ("categorical", Pipeline([("impute", impute), ("encode", encode)]), categorical)
        )
    if not branches:
        raise ValueError("build_pipeline needs at least one numeric or categorical column")
    return Pipeline(
        [("prepare", ColumnTransformer(branches)), ("model", _estimator(config, seed, n_jobs))]
    )


def _estimator(config: dict[str, Any], seed: int, n_jobs: int) -> ClassifierMixin:
    family = config["family"]
    if family == "logistic_regression":
        return LogisticRegression(
            C=float(config["lr_C"]),
            class_weight=_weight(config["lr_class_weight"]),
            solver="lbfgs",
            max_iter=2000,
        )
    if family in ("random_forest", "extra_trees"):
        prefix = "rf" if family == "random_forest" else "et"
        forest = RandomForestClassifier if family == "random_forest" else ExtraTreesClassifier
        return forest(
            n_estimators=int(config[f"{prefix}_n_estimators"]),
            max_depth=int(config[f"{prefix}_max_depth"]),
            min_samples_leaf=int(config[f"{prefix}_min_samples_leaf"]),
            max_features=config[f"{prefix}_max_features"],
            class_weight=_weight(config[f"{prefix}_class_weight"]),
            random_state=seed,
            n_jobs=n_jobs,
        )
    if family == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(
            learning_rate=float(config["hgb_learning_rate"]),
            max_iter=int(config["hgb_max_iter"]),
            max_leaf_nodes=int(config["hgb_max_leaf_nodes"]),
            min_samples_leaf=int(config["hgb_min_samples_leaf"]),
            l2_regularization=float(config["hgb_l2_regularization"]),
            class_weight=_weight(config["hgb_class_weight"]),
            early_stopping=False,  # cross-validation judges the model; no inner split
            random_state=seed,
        )
    raise ValueError(f"unknown model family {family!r}")


def _weight(value: str) -> str | None:
    return None if value == "none" else value

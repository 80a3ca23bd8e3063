"""One sklearn Pipeline per config: impute, scale and encode the inputs, optionally add
interactions and select features, then the estimator.

Only stock sklearn classes and functions (no lambdas; FeatureUnion's "passthrough" is a
FunctionTransformer without a function; functools.partial binds a selection score's seed),
so that the fitted model can be saved with skops and loaded with an explicit allow-list.
SimpleImputer takes bool and nullable numeric columns as they are; text columns go
through ``model_frame`` first, because the one-hot encoder refuses mixed types (an object
column holding 1 and "a", a category of numbers). Callers apply ``model_frame`` before
fit and before predict.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.feature_selection import (
    SelectFromModel,
    SelectKBest,
    f_classif,
    f_regression,
    mutual_info_classif,
    mutual_info_regression,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from api_client.train_params import Problem
from workers.training.estimators import estimator_for

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


@dataclass(frozen=True)
class ModelSpec:
    """What every pipeline of one training job shares: the problem, the input columns, the
    feature selection (fitted inside the pipeline, so inside each CV fold) and the seed."""

    problem: Problem
    numeric: list[str]
    categorical: list[str]
    seed: int
    selection: str = "none"
    max_features: int | None = None
    n_jobs: int = 1


ENSEMBLES = ("voting", "stacking")
# Stacking fits its meta-model on inner out-of-fold predictions of the training rows.
STACKING_FOLDS = 3


def build_pipeline(config: dict[str, Any], spec: ModelSpec) -> Any:
    """The unfitted model of ``config``: a Pipeline, or a voting / stacking ensemble of
    member pipelines (``{"family": "voting", "members": [config, ...]}``)."""
    family = config["family"]
    if family in ENSEMBLES:
        members = [(f"m{i}", build_pipeline(m, spec)) for i, m in enumerate(config["members"])]
        return ensemble_of(family, members, spec)
    steps: list[tuple[str, Any]] = [("prepare", preparation(config, spec))]
    if spec.selection != "none":
        steps.append(("select", selector(spec)))
    steps.append(("model", estimator_for(config, spec.problem, spec.seed, spec.n_jobs)))
    return Pipeline(steps)


def ensemble_of(method: str, members: list[tuple[str, Any]], spec: ModelSpec) -> Any:
    classify = spec.problem in ("binary", "multiclass")
    if method == "voting":
        if classify:
            return VotingClassifier(members, voting="soft")
        return VotingRegressor(members)
    if classify:
        return StackingClassifier(
            members,
            final_estimator=LogisticRegression(max_iter=2000),
            cv=STACKING_FOLDS,
            stack_method="predict_proba",
        )
    return StackingRegressor(members, final_estimator=RidgeCV(), cv=STACKING_FOLDS)


def preparation(config: dict[str, Any], spec: ModelSpec) -> ColumnTransformer:
    """Imputation, scaling, interactions and encoding of the inputs, as ``config`` chooses
    (no ``prep_*`` keys: median imputation and one-hot encoding only)."""
    branches: list[tuple[str, Any, list[str]]] = []
    if spec.numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", add_indicator=True))
        ]
        scaling = config.get("prep_scaling", "none")
        if scaling == "standard":
            steps.append(("scale", StandardScaler()))
        elif scaling == "robust":
            steps.append(("scale", RobustScaler()))
        top_k = int(config.get("prep_interactions", 0))
        if top_k and spec.problem != "clustering":
            steps.append(("interactions", _interactions(min(top_k, len(spec.numeric)), spec)))
        branches.append(("numeric", Pipeline(steps), spec.numeric))
    if spec.categorical:
        impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)
        encode = _encoder(config.get("prep_encoding", "onehot"))
        branches.append(
            ("categorical", Pipeline([("impute", impute), ("encode", encode)]), spec.categorical)
        )
    if not branches:
        raise ValueError("build_pipeline needs at least one numeric or categorical column")
    return ColumnTransformer(branches)


def _encoder(encoding: str) -> Any:
    if encoding == "ordinal":
        return OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=-1,
            min_frequency=MIN_CATEGORY_ROWS,
            max_categories=MAX_CATEGORIES,
        )
    return OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=MIN_CATEGORY_ROWS,
        max_categories=MAX_CATEGORIES,
        sparse_output=False,
    )


def _score_function(problem: Problem) -> Any:
    return f_classif if problem in ("binary", "multiclass") else f_regression


def _interactions(top_k: int, spec: ModelSpec) -> FeatureUnion:
    """The inputs plus the pairwise products of the ``top_k`` numeric inputs most related
    to the target (univariate F-test, fitted on the training fold). PolynomialFeatures
    repeats the k chosen inputs beside their products: a linear model shares the weight
    between the copies, and a selection step may keep both copies of one input."""
    pairs = Pipeline(
        [
            ("top", SelectKBest(_score_function(spec.problem), k=top_k)),
            ("products", PolynomialFeatures(2, interaction_only=True, include_bias=False)),
        ]
    )
    return FeatureUnion([("inputs", "passthrough"), ("pairs", pairs)])


def selector(spec: ModelSpec) -> Any:
    """The feature-selection step: it sees only the rows the pipeline is fitted on."""
    k = spec.max_features
    if k is None:
        raise ValueError(f"selection {spec.selection!r} needs max_features")
    classify = spec.problem in ("binary", "multiclass")
    if spec.selection == "tree_importance":
        trees = ExtraTreesClassifier if classify else ExtraTreesRegressor
        forest = trees(n_estimators=100, random_state=spec.seed, n_jobs=spec.n_jobs)
        return SelectFromModel(forest, max_features=k, threshold=-np.inf)
    if spec.selection == "correlation":
        return SelectKBest(_score_function(spec.problem), k=k)
    if spec.selection == "mutual_info":
        information = mutual_info_classif if classify else mutual_info_regression
        return SelectKBest(partial(information, random_state=spec.seed), k=k)
    raise ValueError(f"unknown selection method {spec.selection!r}")


def selected_features(model: Any) -> list[str] | None:
    """The encoded features a fitted pipeline's selection step kept (None without one)."""
    if not isinstance(model, Pipeline) or "select" not in model.named_steps:
        return None
    names = model.named_steps["prepare"].get_feature_names_out()
    mask = model.named_steps["select"].get_support()
    return [str(name) for name, kept in zip(names, mask, strict=True) if kept]

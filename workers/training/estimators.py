"""The estimator at the end of a pipeline, built from a config's family and parameters.

Only stock scikit-learn classes, so that the fitted pipeline saves with skops and loads
from an explicit allow-list of types.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge, TweedieRegressor
from sklearn.mixture import GaussianMixture

from api_client.train_params import Problem

# k-means restarts: more finds a better optimum, each costs a full fit.
KMEANS_INITS = 4


def estimator_for(
    config: dict[str, Any], problem: Problem, seed: int, n_jobs: int
) -> BaseEstimator:
    family = config["family"]
    classify = problem in ("binary", "multiclass")
    if family == "logistic_regression":
        return LogisticRegression(
            C=float(config["lr_C"]),
            class_weight=_weight(config["lr_class_weight"]),
            solver="lbfgs",
            max_iter=2000,
        )
    if family in ("random_forest", "extra_trees"):
        return _forest(config, family, classify, seed, n_jobs)
    if family == "hist_gradient_boosting":
        return _boosting(config, classify, seed)
    if family == "ridge":
        return Ridge(alpha=float(config["ridge_alpha"]))
    if family == "tweedie":
        return TweedieRegressor(
            power=float(config["tw_power"]),
            alpha=float(config["tw_alpha"]),
            link="log",
            solver="newton-cholesky",
            max_iter=1000,
        )
    if family == "kmeans":
        return KMeans(n_clusters=int(config["n_segments"]), n_init=KMEANS_INITS, random_state=seed)
    if family == "minibatch_kmeans":
        return MiniBatchKMeans(
            n_clusters=int(config["n_segments"]),
            batch_size=int(config["mbk_batch_size"]),
            n_init=KMEANS_INITS,
            random_state=seed,
        )
    if family == "gaussian_mixture":
        return GaussianMixture(
            n_components=int(config["n_segments"]),
            covariance_type=str(config["gmm_covariance"]),
            reg_covar=1e-4,  # one-hot and indicator columns make covariances singular
            random_state=seed,
        )
    raise ValueError(f"unknown model family {family!r}")


def _forest(
    config: dict[str, Any], family: str, classify: bool, seed: int, n_jobs: int
) -> BaseEstimator:
    prefix = "rf" if family == "random_forest" else "et"
    common: dict[str, Any] = {
        "n_estimators": int(config[f"{prefix}_n_estimators"]),
        "max_depth": int(config[f"{prefix}_max_depth"]),
        "min_samples_leaf": int(config[f"{prefix}_min_samples_leaf"]),
        "max_features": config[f"{prefix}_max_features"],
        "random_state": seed,
        "n_jobs": n_jobs,
    }
    if classify:
        forest = RandomForestClassifier if family == "random_forest" else ExtraTreesClassifier
        return forest(class_weight=_weight(config[f"{prefix}_class_weight"]), **common)
    regressor = RandomForestRegressor if family == "random_forest" else ExtraTreesRegressor
    return regressor(**common)


def _boosting(config: dict[str, Any], classify: bool, seed: int) -> BaseEstimator:
    common: dict[str, Any] = {
        "learning_rate": float(config["hgb_learning_rate"]),
        "max_iter": int(config["hgb_max_iter"]),
        "max_leaf_nodes": int(config["hgb_max_leaf_nodes"]),
        "min_samples_leaf": int(config["hgb_min_samples_leaf"]),
        "l2_regularization": float(config["hgb_l2_regularization"]),
        "early_stopping": False,  # cross-validation judges the model; no inner split
        "random_state": seed,
    }
    if classify:
        return HistGradientBoostingClassifier(
            class_weight=_weight(config["hgb_class_weight"]), **common
        )
    return HistGradientBoostingRegressor(loss=str(config["hgb_loss"]), **common)


def _weight(value: str) -> str | None:
    return None if value == "none" else value

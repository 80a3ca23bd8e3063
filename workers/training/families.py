"""The hyperparameter search space: model families, their Optuna ranges and grid presets.

A config is plain JSON data: ``{"family": ..., <prefix>_<param>: ...}``. The prefix (lr_, rf_,
et_, hgb_) keeps each family's parameters apart, so the Optuna space is conditional on the
family and TPE never mixes one family's history into another's. ``None`` is spelled "none"
because categorical choices are stored in the Optuna database; build_pipeline maps it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from api_client.train_params import FAMILIES as CONTRACT_FAMILIES

FAMILIES: tuple[str, ...] = CONTRACT_FAMILIES  # the contract's list: one source of truth
PRESET_NAMES: tuple[str, ...] = ("small", "medium", "large", "regularised")
_PREFIXES = {
    "logistic_regression": "lr_",
    "random_forest": "rf_",
    "extra_trees": "et_",
    "hist_gradient_boosting": "hgb_",
}


def check_families(families: Sequence[str]) -> list[str]:
    """The families as a list; an empty or unknown one is a programming error upstream."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"families must be a non-empty subset of {FAMILIES}, got {families}")
    return list(dict.fromkeys(families))


def suggest_config(trial: optuna.trial.BaseTrial, families: Sequence[str]) -> dict[str, Any]:
    """Sample a family, then that family's parameters (bayesian and random strategies)."""
    family = str(trial.suggest_categorical("family", check_families(families)))
    if family == "logistic_regression":
        params: dict[str, Any] = {
            "lr_C": trial.suggest_float("lr_C", 1e-3, 1e2, log=True),
            "lr_class_weight": trial.suggest_categorical("lr_class_weight", ["none", "balanced"]),
        }
    elif family in ("random_forest", "extra_trees"):
        params = _suggest_forest(trial, "rf" if family == "random_forest" else "et")
    else:
        params = {
            "hgb_learning_rate": trial.suggest_float("hgb_learning_rate", 0.01, 0.3, log=True),
            "hgb_max_iter": trial.suggest_int("hgb_max_iter", 50, 400, step=50),
            "hgb_max_leaf_nodes": trial.suggest_int("hgb_max_leaf_nodes", 8, 128, log=True),
            "hgb_min_samples_leaf": trial.suggest_int("hgb_min_samples_leaf", 5, 200, log=True),
            "hgb_l2_regularization": trial.suggest_float(
                "hgb_l2_regularization", 1e-8, 10.0, log=True
            ),
            "hgb_class_weight": trial.suggest_categorical("hgb_class_weight", ["none", "balanced"]),
        }
    return {"family": family, **params}


def _suggest_forest(trial: optuna.trial.BaseTrial, prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}_n_estimators": trial.suggest_int(f"{prefix}_n_estimators", 50, 300, step=50),
        f"{prefix}_max_depth": trial.suggest_int(f"{prefix}_max_depth", 3, 20),
        f"{prefix}_min_samples_leaf": trial.suggest_int(
            f"{prefix}_min_samples_leaf", 1, 50, log=True
        ),
        f"{prefix}_max_features": trial.suggest_categorical(
            f"{prefix}_max_features", ["sqrt", "log2", 0.5]
        ),
        f"{prefix}_class_weight": trial.suggest_categorical(
            f"{prefix}_class_weight", ["none", "balanced", "balanced_subsample"]
        ),
    }


def _forest_presets(prefix: str) -> list[dict[str, Any]]:
    # small: shallow and quick; medium: a usual default; large: deep, many trees, for big
    # tables; regularised: big leaves and balanced classes, for noisy or imbalanced data.
    rows = [
        (100, 6, 5, "sqrt", "none"),
        (200, 10, 2, "sqrt", "none"),
        (300, 20, 1, 0.5, "none"),
        (200, 8, 20, "sqrt", "balanced_subsample"),
    ]
    keys = ("n_estimators", "max_depth", "min_samples_leaf", "max_features", "class_weight")
    return [{f"{prefix}_{k}": v for k, v in zip(keys, row, strict=True)} for row in rows]


GRID_PRESETS: dict[str, list[dict[str, Any]]] = {
    # small: light regularisation; medium: sklearn's default C; large: nearly unregularised;
    # regularised: strong shrinkage with balanced classes.
    "logistic_regression": [
        {"lr_C": 10.0, "lr_class_weight": "none"},
        {"lr_C": 1.0, "lr_class_weight": "none"},
        {"lr_C": 100.0, "lr_class_weight": "none"},
        {"lr_C": 0.01, "lr_class_weight": "balanced"},
    ],
    "random_forest": _forest_presets("rf"),
    "extra_trees": _forest_presets("et"),
    # small: few small trees, fast learning; medium: sklearn-like defaults; large: many big
    # trees, slow learning; regularised: big leaves, strong L2, balanced classes.
    "hist_gradient_boosting": [
        {
            "hgb_learning_rate": 0.2,
            "hgb_max_iter": 50,
            "hgb_max_leaf_nodes": 8,
            "hgb_min_samples_leaf": 20,
            "hgb_l2_regularization": 1e-8,
            "hgb_class_weight": "none",
        },
        {
            "hgb_learning_rate": 0.1,
            "hgb_max_iter": 100,
            "hgb_max_leaf_nodes": 31,
            "hgb_min_samples_leaf": 20,
            "hgb_l2_regularization": 1e-8,
            "hgb_class_weight": "none",
        },
        {
            "hgb_learning_rate": 0.05,
            "hgb_max_iter": 400,
            "hgb_max_leaf_nodes": 64,
            "hgb_min_samples_leaf": 10,
            "hgb_l2_regularization": 0.1,
            "hgb_class_weight": "none",
        },
        {
            "hgb_learning_rate": 0.05,
            "hgb_max_iter": 200,
            "hgb_max_leaf_nodes": 16,
            "hgb_min_samples_leaf": 100,
            "hgb_l2_regularization": 1.0,
            "hgb_class_weight": "balanced",
        },
    ],
}
PRESETS = tuple(range(len(PRESET_NAMES)))


def grid_search_space(families: Sequence[str]) -> dict[str, list[Any]]:
    """The space for optuna.samplers.GridSampler: every family with every preset."""
    return {"family": check_families(families), "preset": list(PRESETS)}


def grid_size(families: Sequence[str]) -> int:
    return len(check_families(families)) * len(PRESETS)


def suggest_grid_config(trial: optuna.trial.BaseTrial, families: Sequence[str]) -> dict[str, Any]:
    """A preset's config (grid strategy): the grid is over (family, preset index)."""
    family = str(trial.suggest_categorical("family", check_families(families)))
    preset = int(trial.suggest_categorical("preset", list(PRESETS)))
    return {"family": family, **GRID_PRESETS[family][preset]}


def config_of(params: dict[str, Any]) -> dict[str, Any]:
    """The config a finished trial trained, from its params (``best_trial.params``)."""
    family = params["family"]
    if "preset" in params:
        return {"family": family, **GRID_PRESETS[family][int(params["preset"])]}
    prefix = _PREFIXES[family]
    return {"family": family, **{k: v for k, v in params.items() if k.startswith(prefix)}}

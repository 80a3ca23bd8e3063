"""The hyperparameter search space: model families, preprocessing choices, their Optuna
ranges and grid presets, for each problem (binary, multiclass, regression, clustering).

A config is plain JSON data: ``{"family": ..., <prefix>_<param>: ..., prep_<choice>: ...}``.
The prefix (lr_, rf_, ...) keeps each family's parameters apart, so the Optuna space is
conditional on the family and TPE never mixes one family's history into another's.
``None`` is spelled "none" because categorical choices are stored in the Optuna database;
the estimator builders map it back. Preprocessing is searched where it matters: scaling and
pairwise interactions for linear models (trees are scale-free and find interactions
themselves), scaling for clustering, the text encoding for every family.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from api_client.train_params import FAMILIES_OF, Problem, TrainParams

PRESET_NAMES: tuple[str, ...] = ("small", "medium", "large", "regularised")
PRESETS = tuple(range(len(PRESET_NAMES)))
LINEAR = ("logistic_regression", "ridge", "tweedie")
CLUSTERING = ("kmeans", "minibatch_kmeans", "gaussian_mixture")
_PREFIXES = {
    "logistic_regression": "lr_",
    "random_forest": "rf_",
    "extra_trees": "et_",
    "hist_gradient_boosting": "hgb_",
    "ridge": "ridge_",
    "tweedie": "tw_",
    "kmeans": "km_",
    "minibatch_kmeans": "mbk_",
    "gaussian_mixture": "gmm_",
}
SHARED_KEYS = ("n_segments",)  # parameters every clustering family has


@dataclass(frozen=True)
class SearchSpace:
    """What a study may try. ``nonnegative_target`` (regression) allows the Poisson and
    Tweedie losses, which are undefined for negative targets."""

    problem: Problem
    families: tuple[str, ...]
    scaling: tuple[str, ...] = ("standard", "robust")
    interactions: tuple[int, ...] = (0, 5)
    encoding: tuple[str, ...] = ("onehot", "ordinal")
    segments: tuple[int, int] = (2, 8)
    nonnegative_target: bool = True

    def __post_init__(self) -> None:
        allowed = FAMILIES_OF[self.problem]
        unknown = [f for f in self.families if f not in allowed]
        if unknown or not self.families:
            raise ValueError(
                f"families must be a non-empty subset of {allowed} for {self.problem}, got "
                f"{self.families}"
            )

    def fingerprint(self, selection: tuple[str, int | None] = ("none", None)) -> str:
        """sha256 of what the request lets the search try (a change bumps the minor
        version): the families and the choices that apply to them, and the selection."""
        linear = any(f in LINEAR for f in self.families)
        clustering = self.problem == "clustering"
        data: dict[str, Any] = {
            "problem": self.problem,
            "families": sorted(self.families),
            "encoding": sorted(self.encoding),
            "scaling": sorted(self.scaling) if linear or clustering else None,
            "interactions": sorted(self.interactions) if linear else None,
            "segments": list(self.segments) if clustering else None,
            "selection": list(selection),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def search_space_of(params: TrainParams, *, nonnegative_target: bool = True) -> SearchSpace:
    prep = params.preprocessing
    return SearchSpace(
        problem=params.problem,
        families=tuple(params.families),
        scaling=tuple(dict.fromkeys(prep.scaling)),
        interactions=tuple(dict.fromkeys(prep.interactions)),
        encoding=tuple(dict.fromkeys(prep.encoding)),
        segments=(params.segments.min, params.segments.max),
        nonnegative_target=nonnegative_target,
    )


def suggest_config(trial: optuna.trial.BaseTrial, space: SearchSpace) -> dict[str, Any]:
    """Sample a family, then its parameters and preprocessing (bayesian and random)."""
    family = str(trial.suggest_categorical("family", list(space.families)))
    config: dict[str, Any] = {"family": family, **_suggest_family(trial, family, space)}
    config.update(_suggest_preprocessing(trial, family, space))
    return config


def _suggest_family(
    trial: optuna.trial.BaseTrial, family: str, space: SearchSpace
) -> dict[str, Any]:
    classify = space.problem in ("binary", "multiclass")
    if family == "logistic_regression":
        return {
            "lr_C": trial.suggest_float("lr_C", 1e-3, 1e2, log=True),
            "lr_class_weight": trial.suggest_categorical("lr_class_weight", ["none", "balanced"]),
        }
    if family in ("random_forest", "extra_trees"):
        return _suggest_forest(trial, _PREFIXES[family][:-1], classify)
    if family == "hist_gradient_boosting":
        return _suggest_boosting(trial, classify, space.nonnegative_target)
    if family == "ridge":
        return {"ridge_alpha": trial.suggest_float("ridge_alpha", 1e-3, 1e3, log=True)}
    if family == "tweedie":
        return {
            # 1 < power < 2: compound Poisson-gamma, an exact zero mass plus positive spend
            "tw_power": trial.suggest_float("tw_power", 1.1, 1.9),
            "tw_alpha": trial.suggest_float("tw_alpha", 1e-4, 10.0, log=True),
        }
    low, high = space.segments
    n_segments = trial.suggest_int("n_segments", low, high)
    if family == "kmeans":
        return {"n_segments": n_segments}
    if family == "minibatch_kmeans":
        size = trial.suggest_categorical("mbk_batch_size", [256, 1024, 4096])
        return {"n_segments": n_segments, "mbk_batch_size": size}
    if family == "gaussian_mixture":
        covariance = trial.suggest_categorical("gmm_covariance", ["full", "diag", "spherical"])
        return {"n_segments": n_segments, "gmm_covariance": covariance}
    raise ValueError(f"unknown model family {family!r}")


def _suggest_forest(trial: optuna.trial.BaseTrial, prefix: str, classify: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        f"{prefix}_n_estimators": trial.suggest_int(f"{prefix}_n_estimators", 50, 300, step=50),
        f"{prefix}_max_depth": trial.suggest_int(f"{prefix}_max_depth", 3, 20),
        f"{prefix}_min_samples_leaf": trial.suggest_int(
            f"{prefix}_min_samples_leaf", 1, 50, log=True
        ),
        # 1.0 (every input at every split) is scikit-learn's regression default; by hand,
        # shallow extra trees with it ranked CDNOW spend best (Spearman 0.503, sqrt 0.48)
        f"{prefix}_max_features": trial.suggest_categorical(
            f"{prefix}_max_features", ["sqrt", "log2", 0.5, 1.0]
        ),
    }
    if classify:
        params[f"{prefix}_class_weight"] = trial.suggest_categorical(
            f"{prefix}_class_weight", ["none", "balanced", "balanced_subsample"]
        )
    return params


def _suggest_boosting(
    trial: optuna.trial.BaseTrial, classify: bool, nonnegative: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "hgb_learning_rate": trial.suggest_float("hgb_learning_rate", 0.01, 0.3, log=True),
        "hgb_max_iter": trial.suggest_int("hgb_max_iter", 50, 400, step=50),
        "hgb_max_leaf_nodes": trial.suggest_int("hgb_max_leaf_nodes", 8, 128, log=True),
        "hgb_min_samples_leaf": trial.suggest_int("hgb_min_samples_leaf", 5, 200, log=True),
        "hgb_l2_regularization": trial.suggest_float("hgb_l2_regularization", 1e-8, 10.0, log=True),
    }
    if classify:
        params["hgb_class_weight"] = trial.suggest_categorical(
            "hgb_class_weight", ["none", "balanced"]
        )
    else:
        # Poisson suits counts and zero-heavy spend; it needs y >= 0 (gamma would need y > 0)
        losses = ["squared_error", "poisson"] if nonnegative else ["squared_error"]
        params["hgb_loss"] = trial.suggest_categorical("hgb_loss", losses)
    return params


def _suggest_preprocessing(
    trial: optuna.trial.BaseTrial, family: str, space: SearchSpace
) -> dict[str, Any]:
    prep: dict[str, Any] = {}
    if family in LINEAR or family in CLUSTERING:
        prep["prep_scaling"] = trial.suggest_categorical("prep_scaling", list(space.scaling))
    if family in LINEAR:
        prep["prep_interactions"] = int(
            trial.suggest_categorical("prep_interactions", list(space.interactions))
        )
    prep["prep_encoding"] = trial.suggest_categorical("prep_encoding", list(space.encoding))
    return prep


def _forest_presets(prefix: str, classify: bool) -> list[dict[str, Any]]:
    # small: shallow and quick; medium: a usual default; large: deep, many trees, for big
    # tables; regularised: big leaves (and balanced classes), for noisy or imbalanced data.
    rows = [
        (100, 6, 5, "sqrt", "none"),
        (200, 10, 2, "sqrt", "none"),
        (300, 20, 1, 0.5, "none"),
        (200, 8, 20, "sqrt", "balanced_subsample"),
    ]
    keys = ("n_estimators", "max_depth", "min_samples_leaf", "max_features", "class_weight")
    presets = [{f"{prefix}_{k}": v for k, v in zip(keys, row, strict=True)} for row in rows]
    if not classify:
        for preset in presets:
            del preset[f"{prefix}_class_weight"]
    return presets


def _boosting_presets(classify: bool) -> list[dict[str, Any]]:
    # small: few small trees, fast learning; medium: sklearn-like defaults; large: many big
    # trees, slow learning; regularised: big leaves, strong L2 (balanced classes, or the
    # Poisson loss for zero-heavy targets).
    rows = [
        (0.2, 50, 8, 20, 1e-8),
        (0.1, 100, 31, 20, 1e-8),
        (0.05, 400, 64, 10, 0.1),
        (0.05, 200, 16, 100, 1.0),
    ]
    keys = ("learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "l2_regularization")
    presets: list[dict[str, Any]] = [
        {f"hgb_{k}": v for k, v in zip(keys, row, strict=True)} for row in rows
    ]
    for number, preset in enumerate(presets):
        regularised = number == 3
        if classify:
            preset["hgb_class_weight"] = "balanced" if regularised else "none"
        else:
            preset["hgb_loss"] = "poisson" if regularised else "squared_error"
    return presets


def presets_of(family: str, problem: Problem) -> list[dict[str, Any]]:
    """The grid strategy's four documented presets of a supervised family."""
    classify = problem in ("binary", "multiclass")
    if family == "logistic_regression":
        # small: light regularisation; medium: sklearn's default C; large: nearly
        # unregularised; regularised: strong shrinkage with balanced classes.
        return [
            {"lr_C": 10.0, "lr_class_weight": "none"},
            {"lr_C": 1.0, "lr_class_weight": "none"},
            {"lr_C": 100.0, "lr_class_weight": "none"},
            {"lr_C": 0.01, "lr_class_weight": "balanced"},
        ]
    if family in ("random_forest", "extra_trees"):
        return _forest_presets(_PREFIXES[family][:-1], classify)
    if family == "hist_gradient_boosting":
        return _boosting_presets(classify)
    if family == "ridge":
        return [{"ridge_alpha": alpha} for alpha in (0.1, 1.0, 10.0, 100.0)]
    if family == "tweedie":
        return [
            {"tw_power": power, "tw_alpha": alpha}
            for power, alpha in ((1.5, 0.01), (1.5, 1.0), (1.2, 0.1), (1.8, 0.1))
        ]
    raise ValueError(f"{family!r} has no presets (clustering grids over segment counts)")


GRID_PRESETS: dict[str, list[dict[str, Any]]] = {
    family: presets_of(family, "binary") for family in FAMILIES_OF["binary"]
}


def _grid_points(space: SearchSpace) -> list[int]:
    """The grid's second axis: preset indices, or segment counts for clustering."""
    if space.problem == "clustering":
        return list(range(space.segments[0], space.segments[1] + 1))
    return list(PRESETS)


def grid_search_space(space: SearchSpace) -> dict[str, list[Any]]:
    """The space for optuna.samplers.GridSampler: every family with every preset (or
    segment count); preprocessing takes the first choice of each list."""
    return {"family": list(space.families), "preset": _grid_points(space)}


def grid_size(space: SearchSpace) -> int:
    return len(space.families) * len(_grid_points(space))


def suggest_grid_config(trial: optuna.trial.BaseTrial, space: SearchSpace) -> dict[str, Any]:
    family = str(trial.suggest_categorical("family", list(space.families)))
    point = int(trial.suggest_categorical("preset", _grid_points(space)))
    return _grid_config(family, point, space)


def _grid_config(family: str, point: int, space: SearchSpace) -> dict[str, Any]:
    if family in CLUSTERING:
        config: dict[str, Any] = {"family": family, "n_segments": point}
        if family == "minibatch_kmeans":
            config["mbk_batch_size"] = 1024
        if family == "gaussian_mixture":
            config["gmm_covariance"] = "full"
    else:
        preset = dict(presets_of(family, space.problem)[point])
        if family == "hist_gradient_boosting" and not space.nonnegative_target:
            preset["hgb_loss"] = "squared_error"
        config = {"family": family, **preset}
    if family in LINEAR or family in CLUSTERING:
        config["prep_scaling"] = space.scaling[0]
    if family in LINEAR:
        config["prep_interactions"] = space.interactions[0]
    config["prep_encoding"] = space.encoding[0]
    return config


def config_of(params: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The config a finished trial trained, from its params (``best_trial.params``)."""
    family = params["family"]
    if "preset" in params:
        return _grid_config(family, int(params["preset"]), space)
    prefix = _PREFIXES[family]
    config = {"family": family}
    config.update(
        {
            k: v
            for k, v in params.items()
            if k.startswith(prefix) or k.startswith("prep_") or k in SHARED_KEYS
        }
    )
    return config


WARM_START_PRESET = 1  # "medium": scikit-learn-like defaults


def warm_start_params(space: SearchSpace) -> list[dict[str, Any]]:
    """Trial params to enqueue before the sampler's own: each supervised family's medium
    preset with the first preprocessing choices. A short budget then always includes the
    defaults that usually work (FLAML starts from defaults for the same reason), and TPE
    starts from their scores instead of only from random points."""
    if space.problem == "clustering":
        return []
    warm = []
    for family in space.families:
        config = _grid_config(family, WARM_START_PRESET, space)
        warm.append(config)
    return warm


def check_families(families: Sequence[str], problem: Problem = "binary") -> list[str]:
    """The families as a list; an empty or unknown one is a programming error upstream."""
    SearchSpace(problem=problem, families=tuple(families))
    return list(dict.fromkeys(families))

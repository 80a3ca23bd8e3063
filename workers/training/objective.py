"""The Optuna objective, sampler and pruner of a training study.

The objective samples a config, cross-validates it and reports the running mean after each
fold, so the pruner can stop a poor trial early; the fold index is the pruning step. A
segmentation trial fits once on the training rows and scores the silhouette instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import optuna

from workers.training.cross_validation import cross_validate
from workers.training.families import (
    SearchSpace,
    grid_search_space,
    suggest_config,
    suggest_grid_config,
)
from workers.training.inputs import TrainingData
from workers.training.metrics import Direction, metric_named
from workers.training.pipeline import ModelSpec, build_pipeline
from workers.training.segments import silhouette

Strategy = Literal["bayesian", "random", "grid"]
STRATEGIES: tuple[str, ...] = ("bayesian", "random", "grid")


def direction_of(metric: str) -> Direction:
    """The study direction of ``metric``: maximize or minimize."""
    return metric_named(metric).direction


def make_objective(
    data: TrainingData,
    spec: ModelSpec,
    space: SearchSpace,
    *,
    strategy: Strategy,
    metric: str,
    before_return: Callable[[], None] | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective; ``before_return`` runs after the trial's work and before its value is
    returned (the caller checks there that it still owns the trial; it may raise)."""
    metric_named(metric)  # fail now, not inside the first trial
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    suggest = suggest_grid_config if strategy == "grid" else suggest_config

    def objective(trial: optuna.Trial) -> float:
        config = suggest(trial, space)
        if data.problem == "clustering":
            value = _clustering_value(trial, config, data, spec)
        else:
            value = _cv_value(trial, config, data, spec, metric)
        trial.set_user_attr("family", config["family"])
        if before_return is not None:
            before_return()
        return value

    return objective


def _cv_value(
    trial: optuna.Trial,
    config: dict[str, Any],
    data: TrainingData,
    spec: ModelSpec,
    metric: str,
) -> float:
    def after_fold(step: int, running_mean: float) -> None:
        trial.report(running_mean, step)
        if trial.should_prune():
            raise optuna.TrialPruned()

    result = cross_validate(config, data, spec, metric=metric, after_fold=after_fold)
    trial.set_user_attr("cv_scores", result.scores)
    trial.set_user_attr("cv_std", result.std)
    return result.mean


def _clustering_value(
    trial: optuna.Trial, config: dict[str, Any], data: TrainingData, spec: ModelSpec
) -> float:
    """Silhouette of the segments on the training rows, in the pipeline's own feature
    space (a seeded sample of rows: the exact score is quadratic in rows)."""
    model = build_pipeline(config, spec)
    space = model[:-1].fit_transform(data.X_train)
    labels = model[-1].fit_predict(space)
    value = silhouette(space, labels, seed=spec.seed)
    trial.set_user_attr("segments_found", len(np.unique(labels)))
    return value


def make_sampler(strategy: Strategy, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    if strategy == "bayesian":
        # constant_liar: parallel workers do not all sample around the same running trials;
        # multivariate + group: TPE models each family's parameters jointly and apart.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, constant_liar=True, n_startup_trials=10, multivariate=True, group=True
            )
    if strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if strategy == "grid":
        return optuna.samplers.GridSampler(grid_search_space(space), seed=seed)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")


def make_pruner(name: str | None, folds: int) -> optuna.pruners.BasePruner:
    """median (never on the first fold alone), hyperband (folds are the resource) or none."""
    if name is None:
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=folds)
    raise ValueError(f"unknown pruner {name!r}; choose 'median', 'hyperband' or None")

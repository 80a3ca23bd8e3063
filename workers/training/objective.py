"""The Optuna objective, sampler and pruner of a training study.

The objective samples a config, cross-validates it and reports the running mean after each
fold, so the pruner can stop a poor trial early; the fold index is the pruning step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import optuna

from workers.training.cross_validation import cross_validate
from workers.training.families import (
    check_families,
    grid_search_space,
    suggest_config,
    suggest_grid_config,
)
from workers.training.inputs import TrainingData
from workers.training.metrics import Direction, metric_named

Strategy = Literal["bayesian", "random", "grid"]
STRATEGIES: tuple[str, ...] = ("bayesian", "random", "grid")


def direction_of(metric: str) -> Direction:
    """The study direction of ``metric``: maximize or minimize."""
    return metric_named(metric).direction


def make_objective(
    data: TrainingData,
    *,
    families: Sequence[str],
    strategy: Strategy,
    folds: int,
    metric: str,
    seed: int,
    n_jobs: int = 1,
    before_return: Callable[[], None] | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective; ``before_return`` runs after the trial's work and before its value is
    returned (the caller checks there that it still owns the trial; it may raise)."""
    chosen = check_families(families)
    metric_named(metric)  # fail now, not inside the first trial
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    suggest = suggest_grid_config if strategy == "grid" else suggest_config

    def objective(trial: optuna.Trial) -> float:
        config = suggest(trial, chosen)

        def after_fold(step: int, running_mean: float) -> None:
            trial.report(running_mean, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = cross_validate(
            config,
            data,
            folds=folds,
            metric=metric,
            seed=seed,
            after_fold=after_fold,
            n_jobs=n_jobs,
        )
        trial.set_user_attr("cv_scores", result.scores)
        trial.set_user_attr("cv_std", result.std)
        trial.set_user_attr("family", config["family"])
        if before_return is not None:
            before_return()
        return result.mean

    return objective


def make_sampler(
    strategy: Strategy, families: Sequence[str], seed: int
) -> optuna.samplers.BaseSampler:
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
        return optuna.samplers.GridSampler(grid_search_space(families), seed=seed)
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

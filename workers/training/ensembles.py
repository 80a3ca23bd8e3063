"""Ensembles over a study's best distinct configurations, and the rule that keeps one.

Soft voting averages the members' predictions; its cross-validated score is computed from
the members' own fold predictions (each fold's voting model is the average of the member
models fitted on that fold), so it costs no extra fit. Stacking learns how to combine the
members from inner out-of-fold predictions and is cross-validated like any config. An
ensemble is kept only when its CV mean beats the single best configuration's by more than
the single best's CV standard error (std / sqrt(folds)): a smaller gain is within the noise
of the folds and not worth a model several times slower to score.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import optuna

from workers.training.cross_validation import CVResult
from workers.training.metrics import Direction, metric_named

RULE = (
    "an ensemble is kept when its CV mean beats the single best configuration's by more "
    "than that configuration's CV standard error (std / sqrt(folds))"
)


def top_distinct_configs(
    trials: list[tuple[dict[str, Any], float]], k: int, direction: Direction
) -> list[dict[str, Any]]:
    """The ``k`` best (config, CV value) pairs with distinct configs, best first."""
    ranked = sorted(trials, key=lambda pair: -pair[1] if direction == "maximize" else pair[1])
    chosen: dict[str, dict[str, Any]] = {}
    for config, _value in ranked:
        chosen.setdefault(json.dumps(config, sort_keys=True), config)
        if len(chosen) == k:
            break
    return list(chosen.values())


def complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE,)
    return [t for t in study.get_trials(deepcopy=False, states=states) if t.value is not None]


def voting_cv(
    members: list[CVResult], y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], metric: str
) -> CVResult:
    """The soft-voting ensemble's CV result from its members' fold predictions."""
    score = metric_named(metric).score
    scores: list[float] = []
    per_fold: list[np.ndarray] = []
    oof: np.ndarray | None = None
    for k, (_fit, valid) in enumerate(folds):
        fold_predictions = [m.fold_predictions[k] for m in members if m.fold_predictions]
        if len(fold_predictions) != len(members):
            raise ValueError("voting_cv needs every member's fold predictions (keep_oof)")
        averaged = np.mean(fold_predictions, axis=0)
        per_fold.append(averaged)
        if oof is None:
            oof = np.full((len(y), *averaged.shape[1:]), np.nan)
        oof[valid] = averaged
        scores.append(score(y[valid], averaged))
    return CVResult(
        scores=scores,
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        oof=oof,
        fold_predictions=per_fold,
    )


def beats(candidate: float, best: float, margin: float, direction: Direction) -> bool:
    """Whether ``candidate`` improves on ``best`` by more than ``margin``."""
    gain = candidate - best if direction == "maximize" else best - candidate
    return bool(gain > margin)


def choose(
    single: CVResult, ensembles: dict[str, CVResult], metric: str
) -> tuple[str, dict[str, Any]]:
    """The method to keep ("single" or an ensemble's name) and the record of the decision."""
    direction = metric_named(metric).direction
    margin = single.standard_error
    record: dict[str, Any] = {
        "metric": metric,
        "rule": RULE,
        "single": _summary(single),
        "margin": margin,
    }
    chosen = "single"
    best = single.mean
    for name, result in ensembles.items():
        record[name] = _summary(result)
        gain = result.mean - single.mean if direction == "maximize" else single.mean - result.mean
        record[name]["gain_over_single"] = gain
        if beats(result.mean, single.mean, margin, direction) and beats(
            result.mean, best, 0.0, direction
        ):
            chosen, best = name, result.mean
    record["chosen"] = chosen
    return chosen, record


def _summary(result: CVResult) -> dict[str, Any]:
    return {
        "mean": result.mean,
        "std": result.std,
        "standard_error": result.standard_error,
        "scores": result.scores,
    }

"""Fit the chosen model on the whole training split and evaluate it on the holdout.

Supervised models: cross-validated predictions of the best configuration (and of its
runners-up, for the ensembles), the decision threshold on those predictions (binary), the
refit, holdout metrics, permutation importances and the reference statistics monitoring
compares later batches with. Segmentation: the refit, the segment sizes and profiles, and
the silhouette and Davies–Bouldin scores on training and holdout rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

from api_client.train_params import TrainParams
from workers.training.comparison import compare_with_baseline, fit_baseline
from workers.training.cross_validation import CVResult, cross_validate
from workers.training.data import TrainingSetup
from workers.training.ensembles import choose, complete_trials, top_distinct_configs, voting_cv
from workers.training.evaluation import (
    choose_threshold,
    holdout_metrics,
    permutation_importances,
)
from workers.training.evaluation_multiclass import multiclass_metrics
from workers.training.evaluation_regression import regression_metrics
from workers.training.families import config_of
from workers.training.metrics import metric_named
from workers.training.pipeline import ENSEMBLES, build_pipeline, selected_features
from workers.training.predict import predictions
from workers.training.reference import reference_statistics
from workers.training.segments import (
    clustering_scores,
    segment_profiles,
    segment_sizes,
)

Progress = Callable[..., None]
STEPS = 5
# Permutation importances cost features x repeats predictions: on 2,000 holdout rows they
# rank features as well as on all of them, at a fraction of the time.
IMPORTANCE_ROWS = 2000
IMPORTANCE_SCORING = {"binary": "roc_auc", "multiclass": "neg_log_loss", "regression": "r2"}


def family_name(config: dict[str, Any]) -> str:
    """The registered family: the estimator's, or e.g. ``voting_ensemble``."""
    family = str(config["family"])
    return f"{family}_ensemble" if family in ENSEMBLES else family


def fit_supervised(
    progress: Progress,
    params: TrainParams,
    setup: TrainingSetup,
    study: optuna.Study,
    best_config: dict[str, Any],
) -> dict[str, Any]:
    data, spec = setup.data, setup.spec
    metric = params.metric
    progress("finalize", 0, STEPS, "finalize: cross-validated predictions of the best trials")
    best_cv = cross_validate(best_config, data, spec, metric=metric, keep_oof=True)
    config, chosen_cv, ensemble = _maybe_ensemble(params, setup, study, best_config, best_cv)
    threshold: dict[str, Any] | None = None
    if data.problem == "binary":
        assert chosen_cv.oof is not None
        # time-ordered folds never validate the earliest rows: their OOF stays NaN
        validated = ~np.isnan(chosen_cv.oof)
        threshold = {
            "objective": params.threshold.objective,
            **choose_threshold(
                data.y_train[validated],
                chosen_cv.oof[validated],
                objective=params.threshold.objective,
                cost_fp=params.threshold.cost_fp,
                cost_fn=params.threshold.cost_fn,
            ),
        }
    progress("finalize", 1, STEPS, "finalize: fit on the whole training split")
    model = build_pipeline(config, spec)
    model.fit(data.X_train, data.y_train)
    progress("finalize", 2, STEPS, "finalize: holdout metrics and importances")
    scores = predictions(model, data.X_holdout, data.problem, data.n_classes)
    if data.problem == "binary":
        assert threshold is not None
        metrics = holdout_metrics(data.y_holdout, scores, threshold["threshold"])
    elif data.problem == "multiclass":
        metrics = multiclass_metrics(data.y_holdout, scores, data.classes)
    else:
        metrics = regression_metrics(data.y_holdout, scores)
    importances = permutation_importances(
        model,
        data.X_holdout,
        data.y_holdout,
        scoring=IMPORTANCE_SCORING[data.problem],
        seed=params.seed,
        max_rows=IMPORTANCE_ROWS,
        stratify=data.problem != "regression",
    )
    comparison = None
    if params.baseline:
        baseline = fit_baseline(
            data.X_train, data.y_train, data.X_holdout, params.baseline, spec, data.n_classes
        )
        comparison = compare_with_baseline(
            data.y_holdout, scores, baseline, params.baseline, data.problem, params.seed
        )
    progress("finalize", 3, STEPS, "finalize: reference statistics for monitoring")
    reference = reference_statistics(
        data.X_train, data.numeric, data.categorical, _score_sample(scores, data.problem)
    )
    return {
        "pipeline": model,
        "config": config,
        "cv": _cv_record(chosen_cv, metric, len(data.folds)),
        "threshold": threshold,
        "metrics": metrics,
        "importances": importances,
        "reference": reference,
        "ensemble": ensemble,
        "selected_features": _selected(model),
        "baseline": comparison,
    }


def _score_sample(scores: np.ndarray, problem: str) -> np.ndarray:
    """The per-row score monitoring follows: P(class 1), the top class's probability, or
    the predicted value."""
    if problem == "multiclass":
        return np.max(scores, axis=1)
    return scores


def _selected(model: Any) -> list[str] | None:
    if hasattr(model, "named_estimators_"):  # an ensemble: the union of its members'
        found = [selected_features(member) for member in model.named_estimators_.values()]
        kept = [name for names in found if names for name in names]
        return sorted(set(kept)) if any(names is not None for names in found) else None
    return selected_features(model)


def _maybe_ensemble(
    params: TrainParams,
    setup: TrainingSetup,
    study: optuna.Study,
    best_config: dict[str, Any],
    best_cv: CVResult,
) -> tuple[dict[str, Any], CVResult, dict[str, Any] | None]:
    """The config to fit (the best, or an ensemble that clearly beats it), its CV result
    and the record of the decision (None when no ensemble was tried)."""
    methods = params.ensemble.methods
    if not methods:
        return best_config, best_cv, None
    data, spec = setup.data, setup.spec
    direction = metric_named(params.metric).direction
    ranked = [
        (config_of(t.params, setup.space), float(t.value))
        for t in complete_trials(study)
        if t.value is not None
    ]
    members = top_distinct_configs(ranked, params.ensemble.top_k, direction)
    if best_config not in members:  # ties in value: the study's best leads
        members = [best_config, *members][: params.ensemble.top_k]
    else:
        members.remove(best_config)
        members.insert(0, best_config)
    if len(members) < 2:
        return (
            best_config,
            best_cv,
            {"chosen": "single", "skipped": "fewer than 2 distinct configs"},
        )
    results: dict[str, CVResult] = {}
    member_cvs = [best_cv] + [
        cross_validate(m, data, spec, metric=params.metric, keep_oof=True) for m in members[1:]
    ]
    if "voting" in methods:
        results["voting"] = voting_cv(member_cvs, data.y_train, data.folds, params.metric)
    if "stacking" in methods:
        stacking = {"family": "stacking", "members": members}
        results["stacking"] = cross_validate(
            stacking, data, spec, metric=params.metric, keep_oof=True
        )
    chosen, record = choose(best_cv, results, params.metric)
    record["members"] = [m["family"] for m in members]
    if chosen == "single":
        return best_config, best_cv, record
    return {"family": chosen, "members": members}, results[chosen], record


def _cv_record(result: CVResult, metric: str, folds: int) -> dict[str, Any]:
    return {
        "metric": metric,
        "mean": result.mean,
        "std": result.std,
        "standard_error": result.standard_error,
        "scores": result.scores,
        "folds": folds,
    }


def fit_segmentation(
    progress: Progress, params: TrainParams, setup: TrainingSetup, config: dict[str, Any]
) -> dict[str, Any]:
    data, spec = setup.data, setup.spec
    progress("finalize", 1, STEPS, "finalize: fit the segments on the whole training split")
    model = build_pipeline(config, spec)
    # the steps fitted one by one leave the pipeline fitted, without a second transform
    train_space = model[:-1].fit_transform(data.X_train)
    train_labels = model[-1].fit_predict(train_space)
    n_segments = int(config["n_segments"])
    progress("finalize", 2, STEPS, "finalize: segment scores, sizes and profiles")
    holdout_space = model[:-1].transform(data.X_holdout)
    holdout_labels = model[-1].predict(holdout_space)
    train_scores = clustering_scores(train_space, train_labels, seed=params.seed)
    holdout_scores = clustering_scores(holdout_space, holdout_labels, seed=params.seed)
    profiles = segment_profiles(data.X_train, train_labels, data.numeric, data.categorical)
    progress("finalize", 3, STEPS, "finalize: reference statistics for monitoring")
    reference = reference_statistics(
        data.X_train, data.numeric, data.categorical, holdout_labels.astype(float)
    )
    reference["segments"] = segment_sizes(train_labels, n_segments)
    metrics = {
        **holdout_scores,
        "training": train_scores,
        "n_segments": n_segments,
        "rows": len(holdout_labels),
        "sizes": segment_sizes(holdout_labels, n_segments),
    }
    top = profiles.get("top_features", [])
    return {
        "pipeline": model,
        "config": config,
        "cv": {"metric": "silhouette", "mean": train_scores.get("silhouette"), "folds": 0},
        "threshold": None,
        "metrics": metrics,
        "importances": [
            {"feature": item["feature"], "mean": item["eta_squared"], "std": 0.0} for item in top
        ],
        "reference": reference,
        "ensemble": None,
        "selected_features": None,
        "segments": {"sizes": segment_sizes(train_labels, n_segments), **profiles},
    }

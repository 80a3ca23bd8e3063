"""The train job's last step: fit the study's best configuration on the whole training
split, choose the decision threshold on its cross-validated predictions, evaluate it on the
holdout (never seen by the search), and register one model version with its artifact,
metrics, importances, reference statistics and lineage."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import optuna

from api_client.contract import ErrorCode
from api_client.train_params import TrainParams
from storage.artifacts import ArtifactRepository
from storage.fanin import FanInRepository
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository
from storage.models import ModelVersion
from storage.trial_claims import TrialClaimRepository
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.preprocessing.loading import DatasetFacts
from workers.training.artifact import dump_pipeline, library_versions
from workers.training.cross_validation import cross_validate
from workers.training.data import dataset_of, training_data
from workers.training.evaluation import (
    choose_threshold,
    holdout_metrics,
    permutation_importances,
)
from workers.training.families import config_of
from workers.training.inputs import TrainingData
from workers.training.lease import lease_kept
from workers.training.pipeline import build_pipeline
from workers.training.reference import reference_statistics
from workers.training.study import open_study
from workers.training.threads import limited_threads, threads_per_process
from workers.training.versions import version_summary

STEPS = 5
# Permutation importances cost features x repeats predictions: on 2,000 holdout rows they
# rank features as well as on all of them, at a fraction of the time.
IMPORTANCE_ROWS = 2000
JSON_MEDIA = "application/json"
SKOPS_MEDIA = "application/octet-stream+skops"


def finalize(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    with ctx.session() as session:
        done = ModelVersionRepository(session).by_job(ctx.job_id)
        if done is not None:
            return version_summary(done, deduplicated=True)
        params = TrainParams.model_validate(JobRepository(session).require(ctx.job_id).params)
        claims = TrialClaimRepository(session).counts(ctx.job_id)
        group = FanInRepository(session).get(f"train-{ctx.job_id}")
        runners = group.expected if group is not None else None
    with lease_kept(ctx.runtime, ctx.job_id):
        study = open_study(ctx.settings.optuna_storage, ctx.settings.trial_heartbeat_s, ctx.job_id)
        best = _best_trial(study)
        facts = dataset_of(ctx.runtime, params.dataset_id)
        data = training_data(ctx.runtime, facts, params)
        config = config_of(best.params)
        with limited_threads(threads_per_process(ctx.settings.threads_per_process)):
            fitted = _fit_and_evaluate(ctx, params, data, config)
        ctx.progress("finalize", 4, STEPS, "finalize: register the model version")
        search = {"claims": claims, "runners": runners}
        version = _register(ctx, params, facts, data, study, best, config, search, fitted)
    return version_summary(version)


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    optuna.storages.fail_stale_trials(study)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise JobError(
            ErrorCode.NO_TRIAL_COMPLETED,
            "no trial completed (all were pruned, failed, or the timeout came first); raise "
            "timeout_s, drop the pruner, or check the failed trials' errors in the study",
        )
    return study.best_trial


def _fit_and_evaluate(
    ctx: JobContext, params: TrainParams, data: TrainingData, config: dict[str, Any]
) -> dict[str, Any]:
    metric = params.optimization.metric
    ctx.progress("finalize", 0, STEPS, "finalize: cross-validated predictions of the best trial")
    cv = cross_validate(
        config,
        data,
        folds=params.validation.folds,
        metric=metric,
        seed=params.seed,
        keep_oof=True,
    )
    assert cv.oof is not None
    threshold = choose_threshold(
        data.y_train,
        cv.oof,
        objective=params.threshold.objective,
        cost_fp=params.threshold.cost_fp,
        cost_fn=params.threshold.cost_fn,
    )
    ctx.progress("finalize", 1, STEPS, "finalize: fit on the whole training split")
    pipeline = build_pipeline(config, data.numeric, data.categorical, params.seed)
    pipeline.fit(data.X_train, data.y_train)
    ctx.progress("finalize", 2, STEPS, "finalize: holdout metrics and importances")
    scores = pipeline.predict_proba(data.X_holdout)[:, 1]
    metrics = holdout_metrics(data.y_holdout, scores, threshold["threshold"])
    importances = permutation_importances(
        pipeline, data.X_holdout, data.y_holdout, seed=params.seed, max_rows=IMPORTANCE_ROWS
    )
    ctx.progress("finalize", 3, STEPS, "finalize: reference statistics for monitoring")
    reference = reference_statistics(data.X_train, data.numeric, data.categorical, scores)
    return {
        "pipeline": pipeline,
        "cv": {
            "metric": metric,
            "mean": cv.mean,
            "std": cv.std,
            "scores": cv.scores,
            "folds": params.validation.folds,
        },
        "threshold": {"objective": params.threshold.objective, **threshold},
        "metrics": metrics,
        "importances": importances,
        "reference": reference,
    }


def _register(
    ctx: JobContext,
    params: TrainParams,
    facts: DatasetFacts,
    data: TrainingData,
    study: optuna.Study,
    best: optuna.trial.FrozenTrial,
    config: dict[str, Any],
    search: dict[str, Any],
    fitted: dict[str, Any],
) -> ModelVersion:
    store = ctx.runtime.store
    model_bytes = dump_pipeline(fitted["pipeline"])
    reference_bytes = json.dumps(fitted["reference"], sort_keys=True, allow_nan=False).encode()
    stored_model = store.put_bytes(model_bytes)
    stored_reference = store.put_bytes(reference_bytes)
    states = _trial_states(study)
    with ctx.session() as session:
        artifacts = ArtifactRepository(session)
        artifacts.record(stored_model, SKOPS_MEDIA)
        artifacts.record(stored_reference, JSON_MEDIA)
        version, _created = ModelVersionRepository(session).register(
            ModelVersion(
                model_name=params.model_name,
                version="",
                model_type=params.model_type,
                family=config["family"],
                job_id=ctx.job_id,
                dataset_id=facts.id,
                dataset_sha256=facts.sha256,
                parent_id=params.parent_version_id,
                study_name=study.study_name,
                artifact_sha256=stored_model.sha256,
                reference_sha256=stored_reference.sha256,
                params=config,
                metrics=fitted["metrics"],
                cv=fitted["cv"],
                decision=fitted["threshold"],
                importances=fitted["importances"],
                input_schema=data.input_schema,
                library_versions=library_versions(),
                lineage={
                    "dataset": facts.as_dict(),
                    "job_id": ctx.job_id,
                    "study_name": study.study_name,
                    "parent_version_id": params.parent_version_id,
                },
                training={
                    "config": params.model_dump(mode="json"),
                    "best_trial": best.number,
                    "trials": states,
                    "claims": search["claims"],
                    "runners": search["runners"],
                    "rows": {"train": len(data.y_train), "holdout": len(data.y_holdout)},
                    "base_rate": float(np.mean(data.y_train)),
                    "positive_class": data.positive_class,
                    "dropped_features": data.dropped,
                },
            )
        )
    return version


def _trial_states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts

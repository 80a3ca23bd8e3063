"""The train job's last step: fit the study's best configuration (or an ensemble of its
best distinct ones, when that is clearly better) on the whole training split, evaluate it
on the holdout (never seen by the search) and register one model version with its
artifact, metrics, importances, reference statistics and lineage (``fitting`` does the
fitting and evaluation; this module the job's bookkeeping)."""

from __future__ import annotations

import json
from dataclasses import asdict
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
from storage.signing import artifact_hmac
from storage.trial_claims import TrialClaimRepository
from workers.build_info import build_info
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.preprocessing.loading import DatasetFacts
from workers.training.artifact import dump_pipeline, library_versions
from workers.training.data import TrainingSetup, dataset_of, training_setup
from workers.training.families import config_of, search_space_of
from workers.training.fitting import STEPS, family_name, fit_segmentation, fit_supervised
from workers.training.lease import lease_kept
from workers.training.study import open_study
from workers.training.threads import limited_threads, threads_per_process
from workers.training.versions import version_summary

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
        facts = dataset_of(ctx.runtime, params.training_dataset_id)
        setup = training_setup(ctx.runtime, facts, params)
        config = config_of(best.params, setup.space)
        with limited_threads(threads_per_process(ctx.settings.threads_per_process)):
            if setup.data.problem == "clustering":
                fitted = fit_segmentation(ctx.progress, params, setup, config)
            else:
                fitted = fit_supervised(ctx.progress, params, setup, study, config)
        ctx.progress("finalize", 4, STEPS, "finalize: register the model version")
        search = {"claims": claims, "runners": runners}
        version = _register(ctx, params, facts, setup, study, best, search, fitted)
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


def _register(
    ctx: JobContext,
    params: TrainParams,
    facts: DatasetFacts,
    setup: TrainingSetup,
    study: optuna.Study,
    best: optuna.trial.FrozenTrial,
    search: dict[str, Any],
    fitted: dict[str, Any],
) -> ModelVersion:
    data = setup.data
    config = fitted["config"]
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
                family=family_name(config),
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
                decision=fitted.get("threshold") or {},
                importances=fitted["importances"],
                input_schema=data.input_schema,
                library_versions=library_versions(),
                lineage={
                    "dataset": facts.as_dict(),
                    "job_id": ctx.job_id,
                    "study_name": study.study_name,
                    "parent_version_id": params.parent_version_id,
                    **build_info(ctx.settings.git_commit),
                },
                artifact_hmac=(
                    artifact_hmac(model_bytes, ctx.settings.artifact_hmac_key)
                    if ctx.settings.artifact_hmac_key
                    else None
                ),
                training={
                    "config": params.model_dump(mode="json"),
                    "best_trial": best.number,
                    "trials": states,
                    "claims": search["claims"],
                    "runners": search["runners"],
                    "rows": {"train": len(data.y_train), "holdout": len(data.y_holdout)},
                    "problem": data.problem,
                    "base_rate": float(np.mean(data.y_train)) if data.problem == "binary" else None,
                    "positive_class": data.positive_class,
                    "classes": data.classes,
                    "merged_classes": data.merged_classes,
                    "dropped_features": data.dropped,
                    "split": data.split,
                    "search_space": asdict(setup.space),
                    # as requested: not narrowed by the data (tweedie on negative targets)
                    "search_space_sha256": search_space_of(params).fingerprint(
                        (params.selection.method, params.selection.max_features)
                    ),
                    "ensemble": fitted.get("ensemble"),
                    "selected_features": fitted.get("selected_features"),
                    "segments": fitted.get("segments"),
                    "baseline": fitted.get("baseline"),
                },
            )
        )
    return version


def _trial_states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts

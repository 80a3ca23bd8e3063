"""Training data for a job, loaded once per worker process: the verified table is cached
by sha256 (LRU, bounded by CIPML_TRAINING_CACHE_BYTES) and never sent through the broker;
the split of the last job is kept too, since a runner scores many trials on it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from api_client.contract import ErrorCode
from api_client.feature_params import duration_days
from api_client.train_params import TrainParams
from storage.datasets import DatasetRepository
from storage.db import transaction
from workers.jobs.errors import JobError
from workers.preprocessing.loading import DatasetFacts
from workers.runtime import Runtime
from workers.training.families import SearchSpace, search_space_of
from workers.training.frame_cache import FrameCache
from workers.training.inputs import SplitPlan, TrainingData, TrainingInputError, prepare_training
from workers.training.pipeline import ModelSpec

_lock = threading.Lock()
_frames: FrameCache | None = None
_prepared: tuple[str, TrainingData] | None = None


def dataset_of(runtime: Runtime, dataset_id: int) -> DatasetFacts:
    with transaction(runtime.sessions) as session:
        dataset = DatasetRepository(session).get(dataset_id)
        if dataset is None:
            raise JobError(
                ErrorCode.DATASET_NOT_FOUND,
                f"no dataset with id {dataset_id}; train on the dataset_id a build_features "
                "(or ingest_dataset) job returned",
            )
        return DatasetFacts(
            id=dataset.id,
            name=dataset.name,
            version=dataset.version,
            sha256=dataset.stored_sha256,
            rows=dataset.rows,
            columns=dataset.columns,
            created_at=dataset.created_at,
        )


@dataclass(frozen=True)
class TrainingSetup:
    """Everything a trial needs: the split data, the pipeline spec and the search space."""

    data: TrainingData
    spec: ModelSpec
    space: SearchSpace


def training_setup(runtime: Runtime, facts: DatasetFacts, params: TrainParams) -> TrainingSetup:
    """The job's data, spec and space; TrainingInputError becomes the job's error."""
    data = training_data(runtime, facts, params)
    try:
        return setup_for(data, params)
    except TrainingInputError as exc:
        raise JobError(exc.code, str(exc)) from None


def setup_for(data: TrainingData, params: TrainParams) -> TrainingSetup:
    """The pipeline spec and the search space of ``params`` on prepared ``data`` (no I/O)."""
    spec = ModelSpec(
        problem=params.problem,
        numeric=data.numeric,
        categorical=data.categorical,
        seed=params.seed,
        selection=params.selection.method,
        max_features=params.selection.max_features,
    )
    nonnegative = data.problem != "regression" or bool(np.min(data.y_train) >= 0)
    if params.families == ["tweedie"] and not nonnegative:
        raise TrainingInputError(
            "invalid_params",
            "the tweedie family needs a non-negative target and this one has negative "
            "values; add ridge, random_forest or hist_gradient_boosting to families",
        )
    inputs = set(data.numeric) | set(data.categorical)
    unusable = [c for c in params.baseline or [] if c not in inputs]
    if unusable:
        raise TrainingInputError(
            "invalid_params",
            f"baseline column(s) {', '.join(unusable)} are not model inputs (missing, "
            "excluded or dropped: see the job's dropped features); the baseline must use "
            "input columns",
        )
    families = [f for f in params.families if nonnegative or f != "tweedie"]
    space = replace(
        search_space_of(params, nonnegative_target=nonnegative), families=tuple(families)
    )
    return TrainingSetup(data=data, spec=spec, space=space)


def training_data(runtime: Runtime, facts: DatasetFacts, params: TrainParams) -> TrainingData:
    """The job's training and holdout split; TrainingInputError becomes the job's error."""
    global _prepared
    key = json.dumps(
        [facts.sha256, params.model_dump(mode="json", include=_SPLIT_FIELDS)], sort_keys=True
    )
    with _lock:
        if _prepared is not None and _prepared[0] == key:
            return _prepared[1]
    frame = _frame(runtime, facts)
    if frame.shape[0] == 0:
        raise JobError(ErrorCode.DATASET_EMPTY, f"dataset {facts.id} has no rows")
    validation = params.validation
    horizon = validation.horizon or _recorded_horizon(runtime, facts.id)
    plan = SplitPlan(
        strategy=params.strategy,
        folds=validation.folds,
        holdout=validation.holdout,
        group_by=validation.group_by,
        cutoff_column=validation.cutoff_column,
        horizon_days=duration_days(horizon) if horizon else None,
    )
    try:
        data = prepare_training(
            frame,
            problem=params.problem,
            target=params.target,
            exclude=list(params.exclude),
            features=list(params.features) if params.features is not None else None,
            plan=plan,
            seed=params.seed,
            positive_class=params.positive_class,
            rare_classes=params.rare_classes,
            max_features=params.selection.max_features,
        )
    except TrainingInputError as exc:
        raise JobError(exc.code, str(exc)) from None
    with _lock:
        _prepared = (key, data)
    return data


_SPLIT_FIELDS = {
    "model_type",
    "target",
    "exclude",
    "features",
    "positive_class",
    "rare_classes",
    "validation",
    "selection",
    "seed",
}


def _recorded_horizon(runtime: Runtime, dataset_id: int) -> str | None:
    """The label horizon build_features recorded for the dataset, if any."""
    with transaction(runtime.sessions) as session:
        dataset = DatasetRepository(session).get(dataset_id)
        lineage = (dataset.lineage or {}) if dataset is not None else {}
    label = lineage.get("label") or {}
    horizon = label.get("horizon") if isinstance(label, dict) else None
    return str(horizon) if horizon else None


def _frame(runtime: Runtime, facts: DatasetFacts) -> pd.DataFrame:
    global _frames
    with _lock:
        if _frames is None:
            _frames = FrameCache(runtime.settings.training_cache_bytes)
        cache = _frames

    def load() -> pd.DataFrame:
        with runtime.store.open_verified(facts.sha256) as handle:
            return pd.read_parquet(handle)

    return cache.get(facts.sha256, load)

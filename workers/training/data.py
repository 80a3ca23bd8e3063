"""Training data for a job, loaded once per worker process: the verified table is cached
by sha256 (LRU, bounded by CIPML_TRAINING_CACHE_BYTES) and never sent through the broker;
the split of the last job is kept too, since a runner scores many trials on it."""

from __future__ import annotations

import json
import threading

import pandas as pd

from api_client.contract import ErrorCode
from api_client.train_params import TrainParams
from storage.datasets import DatasetRepository
from storage.db import transaction
from workers.jobs.errors import JobError
from workers.preprocessing.loading import DatasetFacts
from workers.runtime import Runtime
from workers.training.frame_cache import FrameCache
from workers.training.inputs import TrainingData, TrainingInputError, prepare_binary

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
    try:
        data = prepare_binary(
            frame,
            target=params.target,
            exclude=list(params.exclude),
            features=list(params.features) if params.features is not None else None,
            holdout=params.validation.holdout,
            folds=params.validation.folds,
            seed=params.seed,
            positive_class=params.positive_class,
        )
    except TrainingInputError as exc:
        raise JobError(exc.code, str(exc)) from None
    with _lock:
        _prepared = (key, data)
    return data


_SPLIT_FIELDS = {"target", "exclude", "features", "positive_class", "validation", "seed"}


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

"""The numbers a retrain's decision stands on: the champion's and the challenger's
predictions on labelled rows neither was trained on, judged by ``challenger.decide``.
The retraining policy (scheduler/retrain_decision.py) decides what to do with the
verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from api_client.retrain_params import DecisionPolicy, TrainingWindow
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.model_versions import ModelVersionRepository
from storage.models import utcnow
from workers.deployment.challenger import ChallengerDecision, decide
from workers.deployment.model_inputs import to_model_frame
from workers.deployment.outputs import score_rows
from workers.deployment.services import scoring_services
from workers.deployment.serving import ServingVersion, pipeline_for
from workers.jobs.errors import JobError
from workers.monitoring.check_inputs import truth_values
from workers.runtime import Runtime
from workers.training.labelled_window import WindowTarget, labelled_window_frames


@dataclass(frozen=True)
class Evaluation:
    y_true: np.ndarray
    champion: np.ndarray
    challenger: np.ndarray


def compare_on_held_out_rows(
    runtime: Runtime,
    champion_id: int,
    challenger_id: int,
    *,
    evaluation_id: int | None,
    on_window: bool,
    window: TrainingWindow,
    decision: DecisionPolicy,
) -> ChallengerDecision:
    """Decide a challenger against the champion on rows neither was trained on: the
    retrain window's held-out dataset (``evaluation_id``), else, for a retrain on a named
    dataset, the newest share of the model's labelled traffic of ``window.days``."""
    with transaction(runtime.sessions) as session:
        versions = ModelVersionRepository(session)
        challenger_row = versions.require(challenger_id)
        champion = ServingVersion.of(versions.require(champion_id))
        challenger = ServingVersion.of(challenger_row)
        target = str((challenger_row.training.get("config") or {}).get("target") or "label")
        if evaluation_id is not None:  # the window's newest rows, held out of training
            frame = _evaluation_dataset(runtime, session, evaluation_id)
        elif on_window:  # nothing was held out: no fair comparison (insufficient data)
            frame = pd.DataFrame()
        else:  # trained on a named dataset: judged on the newest labelled traffic
            frame = _recent_traffic(runtime, session, challenger, target, window)
    evaluation = _evaluate(runtime, champion, challenger, frame, target)
    return decide(
        challenger.problem,
        evaluation.y_true,
        evaluation.champion,
        evaluation.challenger,
        min_improvement=decision.min_improvement,
        alpha=decision.alpha,
        min_rows=decision.min_rows,
    )


def _evaluation_dataset(runtime: Runtime, session: Session, dataset_id: int) -> pd.DataFrame:
    dataset = DatasetRepository(session).get(dataset_id)
    if dataset is None:
        return pd.DataFrame()
    with runtime.store.open_verified(dataset.stored_sha256) as handle:
        return pq.ParquetFile(handle).read().to_pandas()


def _recent_traffic(
    runtime: Runtime,
    session: Session,
    version: ServingVersion,
    target: str,
    window: TrainingWindow,
) -> pd.DataFrame:
    """The newest ``evaluation_share`` of the model's labelled predictions of the last
    ``window.days`` (empty when there are none: the decision says so)."""
    end = utcnow()
    try:
        frames = labelled_window_frames(
            session,
            scoring_services(runtime).log_store,
            version.model_name,
            _inputs(version),
            WindowTarget(target, version.problem, version.classes),
            end - timedelta(days=window.days),
            end,
            window.evaluation_share,
        )
    except JobError:  # no labelled traffic
        return pd.DataFrame()
    return frames.evaluation


def _evaluate(
    runtime: Runtime,
    champion: ServingVersion,
    challenger: ServingVersion,
    frame: pd.DataFrame,
    target: str,
) -> Evaluation:
    """Both versions' predictions on the labelled rows both can read."""
    needed = {target, *_inputs(champion), *_inputs(challenger)}
    if frame.empty or not needed <= set(frame.columns):
        empty = np.empty(0)
        return Evaluation(empty, empty, empty)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    y_true = truth_values(frame[target], challenger.problem, challenger.classes)
    return Evaluation(
        y_true, _predictions(runtime, champion, frame), _predictions(runtime, challenger, frame)
    )


def _predictions(runtime: Runtime, version: ServingVersion, frame: pd.DataFrame) -> np.ndarray:
    pipeline = pipeline_for(version, runtime.store, runtime.settings)
    inputs = to_model_frame(frame[_inputs(version)], version.input_schema)
    outputs = score_rows(pipeline, inputs, version)
    if version.problem == "multiclass":
        return np.asarray(outputs.label, dtype=object)
    return np.asarray(outputs.score, dtype=float)


def _inputs(version: ServingVersion) -> list[str]:
    return [str(field["name"]) for field in version.input_schema]

"""A train job's labelled window: the model's logged predictions of the last N days that
have a recorded outcome, resolved once (by the coordinator) into two registered datasets,
the training rows and the newest rows held out for the champion/challenger comparison.

The read, join and split (``labelled_window_frames``) are pure given a session and the
log, so they are tested on real databases without a job; ``resolve_labelled_window`` adds
the job's side: the parent version's facts, registration, and the resolved params stored
on the job row so every later step (runners, finalize) and delivery reads the same data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from api_client.contract import ErrorCode
from api_client.train_params import LabelledWindow, Problem, TrainParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository
from storage.models import Dataset, utcnow
from storage.outcomes import OutcomeRepository, join_outcomes
from storage.prediction_log import (
    ERROR,
    FEATURE_PREFIX,
    PREDICTED_AT,
    PREDICTION_ID,
    ROUTING_KEY,
    VERSION_ID,
    PredictionLog,
)
from workers.deployment.services import scoring_services
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.monitoring.check_inputs import recorded_truth, truth_values

PARQUET = "application/vnd.apache.parquet"
TRAIN_SUFFIX = "__labelled_window"
EVALUATION_SUFFIX = "__labelled_window_eval"
# As the monitoring checks do: an outcome stamped a little after the window's end (clock
# skew between the scorer and the caller recording outcomes) still labels its prediction.
OUTCOME_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class WindowTarget:
    """The target column to write and how outcomes become its values. ``classes`` are the
    parent version's (binary: [negative, positive]); empty when there is no parent."""

    name: str
    problem: Problem
    classes: tuple[str, ...] = ()
    # Binary without the parent's classes: the outcome label that counts as 1 (a number
    # counts as itself); default "1".
    positive: str | None = None


@dataclass(frozen=True)
class WindowFrames:
    train: pd.DataFrame
    evaluation: pd.DataFrame  # may be empty: evaluation_share 0, or one prediction time
    labelled: int  # labelled rows in the window
    predictions: int  # served (error-free) predictions in the window


def labelled_window_frames(
    session: Session,
    log: PredictionLog,
    model_name: str,
    inputs: Sequence[str] | None,
    target: WindowTarget,
    start: datetime,
    end: datetime,
    evaluation_share: float,
    cutoff_column: str | None = None,
    *,
    min_rows: int = 1,
) -> WindowFrames:
    """The window's labelled predictions (every version; rows an arm failed to score are
    left out) as training rows and the newest ``evaluation_share`` as evaluation rows.

    Columns: ``inputs`` (default: every feature the window logged), the target, and the
    cutoff column (the prediction time, UTC) when asked. Raises JobError too_few_rows
    when fewer than ``min_rows`` rows are labelled.
    """
    logged = _logged(session, log, model_name, inputs, start, end)
    outcomes = OutcomeRepository(session, log).window(model_name, start, end + OUTCOME_SLACK)
    served = logged[logged[ERROR].isna()].reset_index(drop=True)
    joined = join_outcomes(served, outcomes) if len(served) and len(outcomes) else None
    frame = _labelled_frame(joined, inputs, target, cutoff_column)
    if len(frame) < min_rows:
        raise JobError(
            ErrorCode.TOO_FEW_ROWS,
            _too_few(model_name, len(frame), min_rows, start, end, len(served)),
        )
    train, evaluation = split_by_time(frame, evaluation_share)
    return WindowFrames(
        train.drop(columns=[PREDICTED_AT]),
        evaluation.drop(columns=[PREDICTED_AT]),
        labelled=len(frame),
        predictions=len(served),
    )


def _logged(
    session: Session,
    log: PredictionLog,
    model_name: str,
    inputs: Sequence[str] | None,
    start: datetime,
    end: datetime,
) -> pd.DataFrame:
    # Only the columns the join and the frame need: a window can be millions of rows.
    columns = None
    if inputs is not None:
        features = [f"{FEATURE_PREFIX}{name}" for name in inputs]
        columns = [PREDICTION_ID, ROUTING_KEY, VERSION_ID, ERROR, *features]
    return log.read(session, model_name, start, end, columns)


def _labelled_frame(
    joined: pd.DataFrame | None,
    inputs: Sequence[str] | None,
    target: WindowTarget,
    cutoff_column: str | None,
) -> pd.DataFrame:
    """Inputs, target and (optionally) cutoff of the labelled rows, oldest first, with the
    prediction time kept in ``predicted_at`` for the split."""
    if joined is None:
        names = list(inputs or [])
        columns = [*names, target.name, *([cutoff_column] if cutoff_column else []), PREDICTED_AT]
        return pd.DataFrame(columns=columns)
    if inputs is None:
        inputs = [
            str(c)[len(FEATURE_PREFIX) :]
            for c in joined.columns
            if str(c).startswith(FEATURE_PREFIX)
        ]
    clash = [n for n in (target.name, cutoff_column) if n and n in inputs]
    if clash:
        raise JobError(
            ErrorCode.INVALID_PARAMS,
            f"column {clash[0]!r} is both a logged model input and the target or cutoff "
            "column of the labelled window; set target or validation.cutoff_column to "
            "another name",
        )
    labelled, truth = recorded_truth(joined)
    rows = joined[labelled]
    frame = rows[[f"{FEATURE_PREFIX}{n}" for n in inputs]].copy()
    frame.columns = list(inputs)
    frame[target.name] = _target_values(truth, target)
    if cutoff_column:
        frame[cutoff_column] = pd.to_datetime(rows[PREDICTED_AT], utc=True)
    frame[PREDICTED_AT] = pd.to_datetime(rows[PREDICTED_AT], utc=True)
    # An outcome that is not a number cannot label a regression row: it is not labelled.
    frame = frame[frame[target.name].notna()]
    return frame.sort_values(PREDICTED_AT, kind="stable").reset_index(drop=True)


def _target_values(truth: pd.Series, target: WindowTarget) -> np.ndarray:
    """The outcome as the target column. Binary: the parent's own class names (so the
    retrained model's positive class is the parent's), or 0/1 without a parent."""
    if target.problem != "binary":
        return truth_values(truth, target.problem, target.classes)
    if len(target.classes) == 2:
        values = truth_values(truth, target.problem, target.classes)
        return np.where(values == 1, target.classes[1], target.classes[0]).astype(object)
    return truth_values(truth, target.problem, ("0", target.positive or "1"))


def split_by_time(
    frame: pd.DataFrame, evaluation_share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows sorted by ``predicted_at`` split into (older, newest ``evaluation_share``).
    Rows of one prediction time stay on one side (a scoring job logs a whole table at one
    time), so every evaluation row is strictly newer than every training row; the cut
    moves to the nearer time boundary, and never leaves training empty."""
    n = len(frame)
    wanted = n - round(n * evaluation_share)
    if wanted >= n:
        return frame, frame.iloc[:0]
    times = frame[PREDICTED_AT].to_numpy()
    boundary = times[wanted]
    before = int(np.searchsorted(times, boundary, side="left"))
    after = int(np.searchsorted(times, boundary, side="right"))
    cut = before if before > 0 and wanted - before <= after - wanted else after
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def _too_few(
    model_name: str, labelled: int, needed: int, start: datetime, end: datetime, served: int
) -> str:
    return (
        f"the labelled window of {model_name} ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
        f"UTC) has {labelled} labelled row(s) of {served} logged prediction(s); training "
        f"needs at least {needed} (labelled_window.min_rows). Record the outcomes of the "
        "predictions (client.record_outcomes), or widen labelled_window.days"
    )


# ---------------------------------------------------------------------- the job's side


@dataclass(frozen=True)
class ParentFacts:
    inputs: list[str] | None
    classes: tuple[str, ...]
    horizon: str | None  # the label horizon the parent's dataset recorded (time_series)


def resolve_labelled_window(ctx: JobContext, params: TrainParams) -> TrainParams:
    """Resolve ``params.labelled_window`` into registered datasets and store the resolved
    params on the job row; idempotent across deliveries (the window's end is stored first,
    and the datasets are found by job and name)."""
    window = params.labelled_window
    if window is None or params.dataset_id is not None:
        return params
    if window.until is None:
        window = window.model_copy(update={"until": utcnow()})
        params = params.model_copy(update={"labelled_window": window})
        _store_params(ctx, params)
    start, until = window_of(window)
    parent = _parent_facts(ctx, params)
    target = WindowTarget(str(params.target), params.problem, parent.classes, params.positive_class)
    cutoff = params.validation.cutoff_column if params.strategy == "time_series" else None
    ctx.progress(
        "load", 0, 1, f"train: read the labelled window of {params.model_name}", force=True
    )
    services = scoring_services(ctx.runtime)
    services.log_buffer.flush()  # this process's buffered predictions belong to the window
    with ctx.session() as session:
        frames = labelled_window_frames(
            session,
            services.log_store,
            params.model_name,
            parent.inputs,
            target,
            start,
            until,
            window.evaluation_share,
            cutoff,
            min_rows=window.min_rows,
        )
    lineage: dict[str, Any] = {
        "labelled_window": {
            "model_name": params.model_name,
            "start": start.isoformat(),
            "end": until.isoformat(),
            "labelled_rows": frames.labelled,
            "predictions": frames.predictions,
            "parent_version_id": params.parent_version_id,
        }
    }
    if parent.horizon and params.validation.horizon is None:
        lineage["label"] = {"horizon": parent.horizon}  # what time_series validation reads
    train_id = _register(ctx, f"{params.model_name}{TRAIN_SUFFIX}", frames.train, lineage)
    evaluation_id = None
    if len(frames.evaluation):
        name = f"{params.model_name}{EVALUATION_SUFFIX}"
        evaluation_id = _register(ctx, name, frames.evaluation, lineage)
    resolved = narrowed(params, list(frames.train.columns), cutoff, parent.classes)
    resolved = resolved.model_copy(
        update={
            "dataset_id": train_id,
            "labelled_window": window.model_copy(update={"evaluation_dataset_id": evaluation_id}),
        }
    )
    # Validated again: model_copy does not, and the stored params must load in every step.
    resolved = TrainParams.model_validate(resolved.model_dump(mode="json"))
    _store_params(ctx, resolved)
    return resolved


def narrowed(
    params: TrainParams, columns: Sequence[str], cutoff: str | None, classes: Sequence[str]
) -> TrainParams:
    """``exclude``, ``features`` and ``baseline`` kept to the window's columns (a parent
    trained on a feature table excluded ids and cutoffs the log never had), the cutoff
    column excluded from the inputs, and the binary positive class the parent's."""
    present = set(columns)
    exclude = [c for c in params.exclude if c in present]
    if cutoff and cutoff not in exclude:
        exclude.append(cutoff)
    features = [c for c in params.features or [] if c in present and c not in exclude]
    baseline = [c for c in params.baseline or [] if c in present and c not in exclude]
    update: dict[str, Any] = {
        "exclude": exclude,
        "features": features or None,
        "baseline": baseline or None,
    }
    if params.problem == "binary":
        # The target holds the parent's class names (or 0/1 without a parent).
        update["positive_class"] = classes[1] if len(classes) == 2 else "1"
    return params.model_copy(update=update)


def _parent_facts(ctx: JobContext, params: TrainParams) -> ParentFacts:
    if params.parent_version_id is None:
        return ParentFacts(None, (), None)
    with ctx.session() as session:
        parent = ModelVersionRepository(session).get(params.parent_version_id)
        if parent is None:
            raise JobError(
                ErrorCode.VERSION_NOT_FOUND,
                f"parent_version_id {params.parent_version_id} is not a registered version",
            )
        if parent.model_name != params.model_name:
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"parent version {parent.id} is a version of {parent.model_name}, not of "
                f"{params.model_name}; the labelled window reads {params.model_name}'s log",
            )
        inputs = [str(field["name"]) for field in parent.input_schema or []]
        classes = tuple(str(c) for c in (parent.training or {}).get("classes") or ())
        dataset = DatasetRepository(session).get(parent.dataset_id)
        label = ((dataset.lineage or {}) if dataset is not None else {}).get("label")
        horizon = label.get("horizon") if isinstance(label, dict) else None
    return ParentFacts(inputs or None, classes, str(horizon) if horizon else None)


def _register(ctx: JobContext, name: str, frame: pd.DataFrame, lineage: dict[str, Any]) -> int:
    """The dataset this job registered under ``name``: found when a delivery before this one
    registered it (a worker killed mid-job), else written and registered now."""
    with ctx.session() as session:
        existing = DatasetRepository(session).by_job(ctx.job_id, name)
        if existing is not None:
            return existing.id
    table = pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    stored = ctx.runtime.store.put_bytes(buffer.getvalue())
    with ctx.session() as session:
        ArtifactRepository(session).record(stored, media_type=PARQUET)
        dataset, _ = DatasetRepository(session).register(
            Dataset(
                name=name,
                stored_sha256=stored.sha256,
                rows=table.num_rows,
                columns=table.num_columns,
                schema=[{"name": f.name, "dtype": str(f.type)} for f in table.schema],
                source_uri=f"prediction_log:{lineage['labelled_window']['model_name']}",
                created_by_job=ctx.job_id,
                lineage=lineage,
            )
        )
        session.flush()
        return dataset.id


def _store_params(ctx: JobContext, params: TrainParams) -> None:
    with ctx.session() as session:
        JobRepository(session).set_params(ctx.job_id, params.model_dump(mode="json"))


def window_of(window: LabelledWindow) -> tuple[datetime, datetime]:
    """[start, end] of a resolved window (``until`` set)."""
    if window.until is None:
        raise ValueError("the labelled window has no end yet")
    return window.until - timedelta(days=window.days), window.until

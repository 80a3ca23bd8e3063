"""What a monitoring check compares, read by reference: the version's training rows (the
reference, sampled), and the current window (logged predictions with their joined
outcomes, or a registered dataset scored by the version)."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import sklearn

from api_client.contract import ErrorCode
from api_client.monitoring_params import CheckParams
from storage.datasets import DatasetRepository
from storage.model_versions import ModelVersionRepository
from storage.models import ModelVersion
from storage.outcomes import OutcomeRepository, join_outcomes
from storage.prediction_log import (
    ERROR,
    FEATURE_PREFIX,
    LABEL,
    LATENCY_MS,
    PREDICTION_ID,
    ROUTING_KEY,
    SCORE,
    VERSION_ID,
)
from workers.deployment.errors import ScoringError
from workers.deployment.model_inputs import to_model_frame
from workers.deployment.outputs import score_rows
from workers.deployment.resolve import version_for_alias
from workers.deployment.services import ScoringServices
from workers.deployment.serving import ServingVersion, pipeline_for
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError

_OUTCOME_SLACK = timedelta(minutes=5)


@dataclass
class Reference:
    frame: pd.DataFrame  # the version's inputs, a seeded sample of its training rows
    scores: np.ndarray  # the version's scores of those rows
    statistics: dict[str, Any]  # what training stored: per-feature profile, score sketch
    prepared: Any = None  # the drift check's sorted, binned reference, made on first use


@dataclass
class Current:
    frame: pd.DataFrame  # the same inputs (a column the window lacks is absent)
    scores: np.ndarray
    source: str  # prediction_log | dataset
    start: datetime | None
    end: datetime | None
    y_true: np.ndarray = field(default_factory=lambda: np.empty(0))  # labelled rows only
    y_score: np.ndarray = field(default_factory=lambda: np.empty(0))
    y_label: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    predictions: int = 0
    errors: int = 0
    latency_p95_ms: float | None = None


@dataclass(frozen=True)
class CheckedVersion:
    serving: ServingVersion
    row: ModelVersion
    target: str | None

    @property
    def inputs(self) -> list[str]:
        return [str(field["name"]) for field in self.serving.input_schema]


def checked_version(ctx: JobContext, params: CheckParams) -> CheckedVersion:
    with ctx.session() as session:
        try:
            row = version_for_alias(session, params.model_name, params.alias)
        except ScoringError as exc:
            raise JobError(exc.code, exc.message) from exc
        row = ModelVersionRepository(session).require(row.id)
        session.expunge(row)
    config = (row.training or {}).get("config") or {}
    return CheckedVersion(ServingVersion.of(row), row, config.get("target"))


_REFERENCES: OrderedDict[tuple[str, int, int], Reference] = OrderedDict()
_REFERENCES_KEPT = 16
_references_lock = threading.Lock()


def load_reference(ctx: JobContext, version: CheckedVersion, pipeline: Any, rows: int) -> Reference:
    """The training rows (a sample of ``rows``, seeded by the version id, so every check of
    a version compares against the same fixed reference) and their scores. Kept per
    process for the versions checked last: a sweep checks the same versions every period."""
    key = (version.row.dataset_sha256, version.serving.id, rows)
    with _references_lock:
        cached = _REFERENCES.get(key)
        if cached is not None:
            _REFERENCES.move_to_end(key)
            return cached
    reference = _read_reference(ctx, version, pipeline, rows)
    with _references_lock:
        _REFERENCES[key] = reference
        while len(_REFERENCES) > _REFERENCES_KEPT:
            _REFERENCES.popitem(last=False)
    return reference


def _read_reference(
    ctx: JobContext, version: CheckedVersion, pipeline: Any, rows: int
) -> Reference:
    store = ctx.runtime.store
    try:
        with store.open_verified(version.row.dataset_sha256) as handle:
            table = pq.ParquetFile(handle).read(columns=version.inputs)
        statistics = _json(store, version.row.reference_sha256)
    except Exception as exc:  # purged by retention, or damaged: nothing to compare with
        raise JobError(
            ErrorCode.DATASET_NOT_FOUND,
            f"the training data of {version.serving.model_name} {version.serving.version} "
            f"cannot be read ({exc}); a check needs it as the reference",
        ) from exc
    frame = table.to_pandas()
    if len(frame) > rows:
        picked = np.random.default_rng(version.serving.id).choice(len(frame), rows, replace=False)
        frame = frame.iloc[np.sort(picked)].reset_index(drop=True)
    return Reference(frame, _scores(pipeline, frame, version.serving), statistics)


def load_logged_window(
    ctx: JobContext,
    services: ScoringServices,
    version: CheckedVersion,
    params: CheckParams,
    now: datetime,
) -> Current:
    """The window's logged predictions of this version (its own rows, every arm), the
    latest ``window_rows`` when set, with outcomes joined."""
    start = now - timedelta(hours=params.window_hours)
    columns = [
        PREDICTION_ID,
        ROUTING_KEY,
        VERSION_ID,
        SCORE,
        LABEL,
        LATENCY_MS,
        ERROR,
        *[f"{FEATURE_PREFIX}{name}" for name in version.inputs],
    ]
    services.log_buffer.flush()
    latest = params.window_rows
    with ctx.session() as session:
        # Only "the latest N rows" needs time order; the statistics do not.
        logged = services.log_store.read(
            session, version.serving.model_name, start, now, columns, ordered=latest is not None
        )
        outcomes = OutcomeRepository(session, services.log_store).window(
            version.serving.model_name, start, now + _OUTCOME_SLACK
        )
    logged = _rows_where(logged, logged[VERSION_ID].to_numpy() == version.serving.id)
    if latest is not None and len(logged) > latest:
        logged = logged.iloc[-latest:]
    failed = logged[ERROR].notna().to_numpy()
    served = _rows_where(logged, ~failed).reset_index(drop=True)
    # A feature no file of the window logged reads as all missing: the quality check
    # reports it (HIGH), the drift check finds no data for it.
    frame = served[[f"{FEATURE_PREFIX}{n}" for n in version.inputs]]
    frame.columns = version.inputs
    current = Current(
        frame=frame,
        scores=served[SCORE].to_numpy(dtype=float),
        source="prediction_log",
        start=start,
        end=now,
        predictions=len(served),
        errors=int(failed.sum()),
        latency_p95_ms=float(np.percentile(served[LATENCY_MS], 95)) if len(served) else None,
    )
    if len(served) and len(outcomes):
        joined = join_outcomes(served, outcomes)
        _labels(current, joined, version.serving)
    return current


def _rows_where(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows where ``keep``; the frame itself when that is every row (a million-row
    window of one version without errors is not copied)."""
    return frame if bool(keep.all()) else frame[keep]


def load_dataset_window(
    ctx: JobContext, version: CheckedVersion, pipeline: Any, dataset_id: int
) -> Current:
    """A registered dataset as the window: scored by the version; its target column, when
    it has the version's, gives the performance."""
    with ctx.session() as session:
        dataset = DatasetRepository(session).get(dataset_id)
        if dataset is None:
            raise JobError(ErrorCode.DATASET_NOT_FOUND, f"no dataset {dataset_id} is registered")
        sha256 = dataset.stored_sha256
    with ctx.runtime.store.open_verified(sha256) as handle:
        source = pq.ParquetFile(handle)
        present = set(source.schema_arrow.names)
        wanted = [n for n in [*version.inputs, version.target or ""] if n in present]
        frame = source.read(columns=wanted).to_pandas()
    inputs = frame[[n for n in version.inputs if n in frame.columns]]
    complete = all(n in inputs.columns for n in version.inputs)
    scores = _scores(pipeline, inputs, version.serving) if complete else np.empty(0)
    current = Current(inputs, scores, "dataset", None, None, predictions=len(frame))
    if complete and version.target and version.target in frame.columns and len(frame):
        outputs = score_rows(
            pipeline, to_model_frame(inputs, version.serving.input_schema), version.serving
        )
        truth = frame[version.target]
        keep = truth.notna().to_numpy()
        current.y_true = _as_truth(truth[keep], version.serving)
        current.y_score = outputs.score[keep]
        current.y_label = np.asarray(outputs.label, dtype=object)[keep]
    return current


def pipeline_of(ctx: JobContext, version: CheckedVersion) -> Any:
    try:
        return pipeline_for(version.serving, ctx.runtime.store, ctx.settings)
    except ScoringError as exc:
        raise JobError(exc.code, exc.message) from exc


def _labels(current: Current, joined: pd.DataFrame, version: ServingVersion) -> None:
    labelled, truth = recorded_truth(joined)
    keep = labelled.to_numpy()
    current.y_true = _as_truth(truth, version)
    current.y_score = joined[SCORE].to_numpy(dtype=float)[keep]
    current.y_label = joined[LABEL].to_numpy(dtype=object)[keep]


def recorded_truth(joined: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Which rows of ``join_outcomes``' output have an outcome, and those rows' outcome (the
    value when one was recorded, else the label). Shared with training on a labelled window."""
    labelled = joined["outcome_value"].notna() | joined["outcome_label"].notna()
    rows = joined.loc[labelled, ["outcome_value", "outcome_label"]]  # not every column
    value = rows["outcome_value"]
    has_value = value.notna()
    if has_value.all():  # numbers only: stay float rather than become objects
        return labelled, value
    return labelled, value.where(has_value, rows["outcome_label"])


def _as_truth(truth: pd.Series, version: ServingVersion) -> np.ndarray:
    return truth_values(truth, version.problem, version.classes)


def truth_values(truth: pd.Series, problem: str, classes: Sequence[str]) -> np.ndarray:
    """Outcomes as the metric wants them: binary -> 0/1 (a label equal to the positive
    class, ``classes[1]``, counts as 1), multiclass -> the label text, regression -> the
    number."""
    if problem == "binary":
        positive = classes[1] if len(classes) == 2 else "1"
        numbers = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ones = numbers == 1
        labels = np.isnan(numbers)  # compared as text only where not a number
        if labels.any():
            ones[labels] = truth[labels].astype(str).to_numpy() == str(positive)
        return ones.astype(np.int64)
    if problem == "regression":
        return pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float)
    return truth.astype(str).to_numpy(dtype=object)


def _scores(pipeline: Any, frame: pd.DataFrame, version: ServingVersion) -> np.ndarray:
    if frame.empty:
        return np.empty(0)
    with sklearn.config_context(assume_finite=False):
        outputs = score_rows(pipeline, to_model_frame(frame, version.input_schema), version)
    return np.asarray(outputs.score, dtype=float)


def _json(store: Any, sha256: str) -> dict[str, Any]:
    with store.open_verified(sha256) as handle:
        return dict(json.loads(handle.read()))

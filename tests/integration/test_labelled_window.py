"""Training on a labelled window: logged predictions joined with recorded outcomes, read
on SQLite and PostgreSQL, split by time, and resolved into registered datasets once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client.train_params import TrainParams
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import Job
from storage.outcomes import OutcomeIn, OutcomeRepository
from storage.prediction_log import PredictionLog, new_prediction_ids
from workers.jobs.errors import JobError
from workers.training import labelled_window as lw
from workers.training.labelled_window import (
    EVALUATION_SUFFIX,
    TRAIN_SUFFIX,
    WindowTarget,
    labelled_window_frames,
    resolve_labelled_window,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
N = 40  # predictions, one an hour
ERRORED = {5, 6}  # an arm failed to score these: never training rows, even when labelled


def _truth(i: int) -> str | None:
    """The outcome recorded for prediction i: by id for even i, by customer key for odd
    multiples of 3, none for the rest."""
    if i % 4 == 0:
        return "yes"
    if i % 4 == 2:
        return "no"  # recorded as the value 0.0
    if i % 3 == 0:
        return "yes"  # recorded by routing key, an hour after the prediction
    return None


LABELLED = [i for i in range(N) if _truth(i) is not None and i not in ERRORED]


def _log(sessions: sessionmaker[Session], tmp_path: Path) -> PredictionLog:
    log = PredictionLog(str(tmp_path / "log"))
    times = [T0 + timedelta(hours=i) for i in range(N)]
    ids = [new_prediction_ids(1, t)[0] for t in times]
    frame = pd.DataFrame(
        {
            "prediction_id": ids,
            "model_name": "churn",
            "version": "1.0.0",
            "version_id": 1,
            "arm": "champion",
            "routing_key": [f"c{i}" for i in range(N)],
            "score": 0.5,
            "label": "yes",
            "latency_ms": 1.0,
            "predicted_at": pd.to_datetime(times, utc=True),
            "error": [("boom" if i in ERRORED else None) for i in range(N)],
            "feature.age": list(range(N)),
            "feature.plan": ["a" if i % 2 else "b" for i in range(N)],
        }
    )
    outcomes = []
    for i in range(N):
        truth = _truth(i)
        if truth is None:
            continue
        if i % 4 == 0:
            outcomes.append(OutcomeIn(ids[i], None, None, "yes"))
        elif i % 4 == 2:
            outcomes.append(OutcomeIn(ids[i], None, 0.0, None, observed_at=times[i]))
        else:
            observed = times[i] + timedelta(hours=1)
            outcomes.append(OutcomeIn(None, f"c{i}", None, "yes", observed_at=observed))
    with transaction(sessions) as session:
        log.write(session, "churn", frame, "b1")
    with transaction(sessions) as session:
        summary = OutcomeRepository(session, log).record(
            "churn", outcomes, now=T0 + timedelta(hours=N)
        )
    assert summary.unknown == 0
    return log


def _frames(
    sessions: sessionmaker[Session],
    log: PredictionLog,
    target: WindowTarget,
    **kwargs: Any,
) -> lw.WindowFrames:
    options: dict[str, Any] = {
        "inputs": ["age", "plan"],
        "evaluation_share": 0.25,
        "cutoff_column": "cutoff",
    }
    options.update(kwargs)
    with transaction(sessions) as session:
        return labelled_window_frames(
            session,
            log,
            "churn",
            options["inputs"],
            target,
            T0,
            T0 + timedelta(days=2),
            options["evaluation_share"],
            options["cutoff_column"],
            min_rows=options.get("min_rows", 1),
        )


def test_only_labelled_rows_split_by_time_with_the_parents_classes(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = _log(sessions, tmp_path)
    frames = _frames(sessions, log, WindowTarget("label", "binary", ("no", "yes")))
    train, evaluation = frames.train, frames.evaluation
    assert list(train.columns) == ["age", "plan", "label", "cutoff"]
    assert frames.labelled == len(LABELLED) and frames.predictions == N - len(ERRORED)
    ages = [*train["age"], *evaluation["age"]]
    assert ages == LABELLED  # only labelled, error-free rows, oldest first, none twice
    assert len(evaluation) == round(len(LABELLED) * 0.25)
    assert train["cutoff"].max() < evaluation["cutoff"].min()
    both = pd.concat([train, evaluation], ignore_index=True)
    expected_times = [T0 + timedelta(hours=i) for i in LABELLED]
    assert list(both["cutoff"]) == expected_times
    assert str(both["cutoff"].dt.tz) == "UTC"
    assert list(both["label"]) == [_truth(i) for i in LABELLED]


def test_without_a_parent_binary_targets_are_0_1_and_every_feature_is_read(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = _log(sessions, tmp_path)
    frames = _frames(
        sessions,
        log,
        WindowTarget("churned", "binary", positive="yes"),
        inputs=None,
        cutoff_column=None,
        evaluation_share=0.0,
    )
    assert frames.evaluation.empty
    assert sorted(frames.train.columns) == ["age", "churned", "plan"]
    assert list(frames.train["churned"]) == [int(_truth(i) == "yes") for i in LABELLED]


def test_too_few_labelled_rows_is_a_clear_error(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log = _log(sessions, tmp_path)
    with pytest.raises(JobError) as caught:
        _frames(sessions, log, WindowTarget("label", "binary", ("no", "yes")), min_rows=200)
    assert caught.value.code == "too_few_rows"
    assert f"has {len(LABELLED)} labelled row(s)" in caught.value.message
    assert "record_outcomes" in caught.value.message and "days" in caught.value.message


def test_rows_of_one_prediction_time_stay_on_one_side() -> None:
    times = pd.to_datetime([T0] * 6 + [T0 + timedelta(hours=1)] * 2, utc=True)
    frame = pd.DataFrame({"x": range(8), "predicted_at": times})
    train, evaluation = lw.split_by_time(frame, 0.5)  # 4 wanted; the time boundary is at 6
    assert list(train["x"]) == [0, 1, 2, 3, 4, 5] and list(evaluation["x"]) == [6, 7]
    train, evaluation = lw.split_by_time(frame.iloc[:6], 0.5)  # one time: all training
    assert len(train) == 6 and evaluation.empty


class _Context:
    """The part of a JobContext the resolver uses."""

    def __init__(self, sessions: sessionmaker[Session], store: ArtifactStore, job_id: str):
        self.sessions = sessions
        self.job_id = job_id
        self.runtime = SimpleNamespace(store=store)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    def progress(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_resolving_registers_two_datasets_once_and_stores_the_params(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _log(sessions, tmp_path)
    services = SimpleNamespace(log_store=log, log_buffer=SimpleNamespace(flush=lambda: None))
    monkeypatch.setattr(lw, "scoring_services", lambda runtime: services)
    raw = {
        "model_name": "churn",
        "model_type": "churn",
        "exclude": ["customer_id", "cutoff", "plan"],
        "baseline": ["age", "rfm_recency"],
        "validation": {"strategy": "time_series", "horizon": "1W"},
        "labelled_window": {
            "days": 2,
            "min_rows": 10,
            "until": (T0 + timedelta(days=2)).isoformat(),
        },
    }
    with transaction(sessions) as session:
        JobRepository(session).create(
            Job(id="job-1", type="train", params=raw, status="RUNNING", attempts=1)
        )
    ctx = _Context(sessions, ArtifactStore(str(tmp_path / "artifacts")), "job-1")
    params = TrainParams.model_validate(raw)
    resolved = resolve_labelled_window(ctx, params)  # type: ignore[arg-type]
    window = resolved.labelled_window
    assert window is not None and window.evaluation_dataset_id is not None
    assert resolved.exclude == ["cutoff", "plan"]  # customer_id: not in the window
    assert resolved.baseline == ["age"] and resolved.positive_class == "1"
    with transaction(sessions) as session:
        stored = TrainParams.model_validate(JobRepository(session).require("job-1").params)
        datasets = DatasetRepository(session)
        train = datasets.require(resolved.training_dataset_id)
        evaluation = datasets.require(window.evaluation_dataset_id)
        names = (train.name, evaluation.name, train.created_by_job)
        rows = (train.rows, evaluation.rows)
        sha = train.stored_sha256
    assert stored == resolved
    assert names == (f"churn{TRAIN_SUFFIX}", f"churn{EVALUATION_SUFFIX}", "job-1")
    assert sum(rows) == len(LABELLED)
    with ctx.runtime.store.open_verified(sha) as handle:
        table = pq.ParquetFile(handle).read().to_pandas()
    assert list(table["age"]) == LABELLED[: rows[0]]

    # A redelivery that resolves again (killed before the params were stored) finds the
    # datasets this job registered.
    again = resolve_labelled_window(ctx, params)  # type: ignore[arg-type]
    assert again.dataset_id == resolved.dataset_id
    assert again.labelled_window == window

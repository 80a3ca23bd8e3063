"""Distributed training through real workers on Redis + PostgreSQL: exact trial counts on
two processes, a runner killed mid-trial, admission control, live study, bad inputs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client, InvalidRequest, JobCancelled, JobFailed, JobNotFound
from api_client.contract import CONTRACT_VERSION, TaskName
from storage.admission import AdmissionRepository
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import FanInGroup, ModelVersion, TrialClaim
from tests.acceptance.helpers import admitted_order, eventually, job_row, running_peak
from tests.support.workers import WorkerProcess, stop_all
from workers.demo import churn_features_params
from workers.settings import Settings
from workers.training.artifact import load_pipeline

pytestmark = pytest.mark.slow

EXCLUDE = ["customer_id", "cutoff"]


def train_config(name: str, **search: Any) -> dict[str, Any]:
    """A churn search over logistic regression. Its preprocessing is fixed to standard
    scaling without interactions: these tests are about the distributed search, and on the
    churn features lbfgs converges 3-10x slower after robust scaling for the same ROC AUC
    (one trial's 3 folds: 0.8-2.3 s standard, 2.4-12 s robust), which made the 30-trial
    searches below take minutes."""
    optimization = {
        "strategy": "bayesian",
        "n_trials": 30,
        "parallelism": 2,
        "metric": "roc_auc",
        "families": ["logistic_regression"],
        **search,
    }
    return {
        "model_name": name,
        "model_type": "churn",
        "target": "label",
        "exclude": EXCLUDE,
        "optimization": optimization,
        "validation": {"strategy": "stratified_cv", "folds": 3, "holdout": 0.2},
        "preprocessing": {"scaling": ["standard"], "interactions": [0]},
        "seed": 0,
    }


@pytest.fixture(scope="module")
def churn(client: Client, cdnow: int) -> int:
    result = client.submit("build_features", churn_features_params(cdnow)).wait(300)
    return int(result["dataset_id"])


@pytest.fixture(scope="module")
def trial_workers(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[WorkerProcess]]:
    """Two more processes serving trial runners only (one pool process each)."""
    logs = tmp_path_factory.mktemp("trial-logs")
    workers = [
        WorkerProcess(service_env, logs / f"t{i}.log", concurrency=1, queues="trials", name=f"t{i}")
        for i in range(2)
    ]
    try:  # both boot side by side; none is left running if one fails to
        for worker in workers:
            worker.launch()
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        stop_all(workers)


@pytest.fixture(scope="module")
def optuna_url(service_env: dict[str, str]) -> str:
    return Settings(database_url=service_env["CIPML_DATABASE_URL"]).optuna_storage


def states(optuna_url: str, job_id: str) -> dict[str, int]:
    study = optuna.load_study(study_name=job_id, storage=optuna_url)
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def claims_of(sessions: sessionmaker[Session], job_id: str) -> list[TrialClaim]:
    with transaction(sessions) as session:
        return list(
            session.scalars(
                select(TrialClaim).where(TrialClaim.job_id == job_id).order_by(TrialClaim.id)
            )
        )


def versions_of(sessions: sessionmaker[Session], job_id: str) -> list[ModelVersion]:
    with transaction(sessions) as session:
        return list(session.scalars(select(ModelVersion).where(ModelVersion.job_id == job_id)))


def recorded(client: Client, job_id: str) -> bool:
    try:
        return bool(client.job(job_id).status)
    except JobNotFound:
        return False


def follow_ups(sessions: sessionmaker[Session], job_id: str) -> int:
    with transaction(sessions) as session:
        return len(JobRepository(session).events(job_id, "follow_up_started"))


def dataset_sha(sessions: sessionmaker[Session], dataset_id: int) -> str:
    with transaction(sessions) as session:
        return DatasetRepository(session).require(dataset_id).stored_sha256


def test_two_processes_finish_a_study_with_exactly_n_complete_trials(
    client: Client,
    store: ArtifactStore,
    churn: int,
    trial_workers: list[WorkerProcess],
    service_sessions: sessionmaker[Session],
    optuna_url: str,
) -> None:
    handle = client.submit_train(churn, train_config("churn-exact"))
    lines: set[str] = set()
    live: dict[str, int] = {}
    while handle.status() not in ("SUCCEEDED", "FAILED", "CANCELLED"):
        progress = handle.progress()
        if progress is not None and progress.line.startswith("trial "):
            lines.add(progress.line)
        if lines and not live:
            # The study is readable while it runs (optuna-dashboard reads the same).
            with contextlib.suppress(KeyError):
                live = states(optuna_url, handle.id)
        time.sleep(0.2)  # each round is a control call; trials take about a second each
    result = handle.wait(600, progress=False)
    assert len(lines) >= 2, lines  # e.g. "trial 7/30 · best roc_auc 0.8123 · ETA 12s"
    assert live  # seen before the job ended
    assert states(optuna_url, handle.id)["COMPLETE"] == 30
    claims = claims_of(service_sessions, handle.id)
    assert sum(c.state == "done" for c in claims) == 30
    runner_processes = {c.runner.rsplit(":", 1)[0] for c in claims}
    assert len(runner_processes) >= 2, runner_processes
    assert follow_ups(service_sessions, handle.id) == 1
    [version] = versions_of(service_sessions, handle.id)
    assert result["model_version_id"] == version.id and result["version"] == "1.0.0"
    assert version.study_name == handle.id and version.family == "logistic_regression"
    metrics = version.metrics
    assert 0.75 < metrics["roc_auc"] < 1 and 0 < metrics["brier"] < 0.25
    for key in ("pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "calibration"):
        assert key in metrics
    assert version.cv["metric"] == "roc_auc" and len(version.cv["scores"]) == 3
    assert 0 < version.decision["threshold"] < 1
    assert version.importances[0]["mean"] >= version.importances[-1]["mean"]
    assert version.lineage["dataset"]["id"] == churn
    assert set(version.library_versions) >= {"scikit-learn", "numpy", "pandas"}
    assert {c["name"] for c in version.input_schema}.isdisjoint({"label", *EXCLUDE})
    job = job_row(service_sessions, handle.id)
    assert job is not None and job.status == "SUCCEEDED"
    # The artifact loads from its allow-list, checked against its versions, and scores.
    pipeline = load_pipeline(store.read_bytes(version.artifact_sha256), version.library_versions)
    table = pd.read_parquet(store.local_path(dataset_sha(service_sessions, churn)))
    inputs = [c["name"] for c in version.input_schema]
    scores = pipeline.predict_proba(table[inputs].head(100))[:, 1]
    assert scores.shape == (100,) and ((scores >= 0) & (scores <= 1)).all()
    reference = json.loads(store.read_bytes(version.reference_sha256))
    assert (
        set(reference["features"]) == set(inputs) and len(reference["scores"]["quantiles"]) == 101
    )


def test_a_runner_killed_mid_trial_is_survived(
    client: Client,
    churn: int,
    trial_workers: list[WorkerProcess],
    service_sessions: sessionmaker[Session],
    optuna_url: str,
) -> None:
    handle = client.submit_train(churn, train_config("churn-killed"))
    victim = None
    for _ in range(5):  # a kill that lands between two trials kills no trial: try again

        def running_trial() -> TrialClaim | None:
            claims = claims_of(service_sessions, handle.id)
            return next((c for c in claims if c.state == "open" and c.trial_number), None)

        claim = eventually(running_trial, timeout=120, interval=0.02, what="a running trial")
        host_pid = claim.runner.split(":")
        os.kill(int(host_pid[1]), signal.SIGKILL)

        def ended(claim_id: int = claim.id) -> str | None:
            state = next(
                c.state for c in claims_of(service_sessions, handle.id) if c.id == claim_id
            )
            return None if state == "open" else state

        if eventually(ended, timeout=60, what="the killed trial's slot to end") == "lost":
            victim = claim
            break
    assert victim is not None, "no kill landed mid-trial"
    handle.wait(600, progress=False)
    study = optuna.load_study(study_name=handle.id, storage=optuna_url)
    trials = study.get_trials(deepcopy=False)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 30
    killed = next(t for t in trials if t.number == victim.trial_number)
    assert killed.state == optuna.trial.TrialState.FAIL  # went stale, marked failed
    rerun = [t for t in trials if t.system_attrs.get("failed_trial") == victim.trial_number]
    # ... and ran again with the parameters it had drawn when it was killed.
    assert rerun and rerun[0].state == optuna.trial.TrialState.COMPLETE
    assert killed.params.items() <= rerun[0].params.items()
    assert follow_ups(service_sessions, handle.id) == 1
    assert len(versions_of(service_sessions, handle.id)) == 1
    with transaction(service_sessions) as session:
        group = session.get(FanInGroup, f"train-{handle.id}")
        assert group is not None and group.completed == group.expected == 2


def test_admission_runs_at_most_five_and_starts_them_in_submission_order(
    client: Client,
    small: tuple[int, int],
    service_env: dict[str, str],
    service_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    # Capacity above the limit: 6 more pool processes for coordinators, runners, finalizes.
    wide = WorkerProcess(
        service_env, tmp_path / "wide.log", concurrency=6, queues="training,trials", name="wide"
    ).start()
    try:
        config = train_config("admission", n_trials=2, parallelism=1)
        config["validation"]["folds"] = 2
        config["exclude"] = ["constant_label", "gappy_label"]
        ids: list[str] = []
        for i in range(12):  # one after another: each accepted before the next is sent
            handle = client.submit_train(small[0], {**config, "model_name": f"admission-{i}"})
            eventually(lambda h=handle: recorded(client, h.id), what="the job row")
            ids.append(handle.id)
        positions = [client.job(i).queue_position for i in ids]
        assert any(p is not None and p > 1 for p in positions), positions  # visible queue
        jobs, peak = running_peak(service_sessions, ids)
        assert [j.status for j in jobs] == ["SUCCEEDED"] * 12, [
            (j.status, j.error_code, j.error_message) for j in jobs
        ]
        assert peak == 5
        admitted = admitted_order(service_sessions, ids)
        assert admitted == ids
    finally:
        wide.stop()


BAD_INPUTS = [
    ({"target": "no_such_column"}, "column_missing"),
    ({"target": "customer_id", "exclude": ["cutoff"]}, "target_not_binary"),
    ({"optimization": {"n_trials": 5000}}, "limit_exceeded"),
    ({"optimization": {"n_trials": 5, "parallelism": 64}}, "limit_exceeded"),
    (  # the grid over one family has 4 presets
        {"optimization": {"strategy": "grid", "n_trials": 5, "families": ["extra_trees"]}},
        "invalid_params",
    ),
    ({"features": ["recency_days", "no_such_feature"]}, "column_missing"),
]


@pytest.mark.parametrize(("change", "code"), BAD_INPUTS)
def test_bad_requests_fail_before_any_trial(
    client: Client,
    churn: int,
    service_sessions: sessionmaker[Session],
    change: dict[str, Any],
    code: str,
) -> None:
    config = {**train_config(f"bad-{uuid.uuid4().hex[:6]}"), **change}
    handle = client.submit_train(churn, config)
    with pytest.raises(JobFailed) as failure:
        handle.wait(120, progress=False)
    assert failure.value.code == code, failure.value
    assert claims_of(service_sessions, handle.id) == []
    assert versions_of(service_sessions, handle.id) == []


def test_timeout_ends_the_search_early_and_cancel_stops_it(
    client: Client, churn: int, service_sessions: sessionmaker[Session]
) -> None:
    timed = client.submit_train(churn, train_config("timed", n_trials=1000, timeout_s=4))
    result = timed.wait(300, progress=False)
    finished = result["training"]["claims"]["done"]
    assert 1 <= finished < 1000 and result["training"]["trials"]["COMPLETE"] == finished
    cancelled = client.submit_train(churn, train_config("cancelled", n_trials=1000))
    eventually(
        lambda: (p := cancelled.progress()) is not None and p.line.startswith("trial "),
        timeout=120,
        what="the search to start",
    )
    cancelled.cancel()
    with pytest.raises(JobCancelled):
        cancelled.wait(120, progress=False)
    assert versions_of(service_sessions, cancelled.id) == []
    with transaction(service_sessions) as session:  # its slot is free again
        assert cancelled.id not in AdmissionRepository(session).held()


@pytest.fixture(scope="module")
def small(client: Client, data_root: Path) -> tuple[int, int]:
    """A 40-row table with a constant, a gappy and a good label, and a 6-row one."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=40),
            "x2": rng.integers(0, 5, size=40),
            "empty": [None] * 40,
            "constant_label": [1] * 40,
            "gappy_label": [0, 1, None, 1] * 10,
            "label": [0, 1] * 20,
        }
    )
    ids = []
    for name, table in (("small", frame), ("tiny", frame.head(6))):
        path = data_root / f"{name}-{uuid.uuid4().hex[:6]}.csv"
        table.to_csv(path, index=False)
        ids.append(client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(60))
    return int(ids[0]["dataset_id"]), int(ids[1]["dataset_id"])


SMALL_CASES = [
    ({"target": "constant_label", "exclude": ["gappy_label", "label"]}, "target_single_class"),
    ({"target": "gappy_label", "exclude": ["constant_label", "label"]}, "target_missing_values"),
    ({"exclude": ["x1", "x2", "empty", "constant_label", "gappy_label"]}, "no_features"),
]


@pytest.mark.parametrize(("change", "code"), SMALL_CASES)
def test_bad_targets_and_features_fail_with_their_codes(
    client: Client,
    small: tuple[int, int],
    service_sessions: sessionmaker[Session],
    change: dict[str, Any],
    code: str,
) -> None:
    config = {**train_config("small", n_trials=2, parallelism=1), **change}
    with pytest.raises(JobFailed) as failure:
        client.submit_train(small[0], config).wait(120, progress=False)
    assert failure.value.code == code, failure.value


def test_too_few_rows_a_missing_dataset_and_an_empty_column(
    client: Client, small: tuple[int, int]
) -> None:
    base = {**train_config("small", n_trials=2, parallelism=1)}
    base["exclude"] = ["constant_label", "gappy_label"]
    with pytest.raises(JobFailed) as failure:  # 3 rows per class cannot fill 3 folds
        client.submit_train(small[1], base).wait(120, progress=False)
    assert failure.value.code == "too_few_rows", failure.value
    with pytest.raises(JobFailed) as failure:
        client.submit_train(10**6, base).wait(120, progress=False)
    assert failure.value.code == "dataset_not_found"
    result = client.submit_train(small[0], base).wait(300, progress=False)
    assert result["training"]["dropped_features"] == {"empty": "entirely missing"}


@pytest.mark.parametrize(
    ("change", "field"),
    [({"model_type": "churnn"}, "model_type"), ({"optimization": {"metric": "auc"}}, "metric")],
)
def test_unknown_model_type_or_metric_is_refused_by_the_client_and_by_the_worker(
    client: Client,
    churn: int,
    service_sessions: sessionmaker[Session],
    change: dict[str, Any],
    field: str,
) -> None:
    config = {**train_config("typo"), **change}
    with pytest.raises(InvalidRequest, match=field):
        client.submit_train(churn, config)
    job_id = f"raw-{uuid.uuid4().hex}"
    client._app.send_task(
        TaskName.SUBMIT.value,
        args=[
            {
                "contract": CONTRACT_VERSION,
                "job_id": job_id,
                "job_type": "train",
                "params": {"dataset_id": churn, **config},
            }
        ],
        queue="control",
    )

    def failed() -> Any:
        row = job_row(service_sessions, job_id)
        return row if row is not None and row.status == "FAILED" else None

    job = eventually(failed, what="the raw train job to end FAILED")
    assert job.error_code == "invalid_params" and field in (job.error_message or "")

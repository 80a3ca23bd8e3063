"""Monitoring checks through real workers and a real beat on Redis + PostgreSQL: a check
of logged traffic with outcomes, a drifted dataset flagged with its features, a window
with no traffic, the stored result and report, and the beat's sweep submitting one check
per deployed model per period.

The model is a small churn model on a 1,000-customer slice of the bundled CDNOW log."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import CipmlError, Client, InvalidRequest
from storage.artifact_store import ArtifactStore
from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import Job, MonitoringCheck, utcnow
from storage.prediction_log import PredictionLog
from tests.acceptance.churn import churn_config, churn_features, dataset_table, records
from tests.acceptance.helpers import eventually, job_row, kill_sessions_waiting_on
from tests.support.beat import BeatProcess

pytestmark = pytest.mark.slow

CUSTOMERS = 1000
SHIFTED = ("frequency", "dollar_value__sum")


@pytest.fixture(scope="module")
def features(client: Client, data_root: Path) -> int:
    return churn_features(client, data_root, slice(1000, 1000 + CUSTOMERS), "monitoring")


@pytest.fixture(scope="module")
def table(
    features: int, store: ArtifactStore, service_sessions: sessionmaker[Session]
) -> pd.DataFrame:
    return dataset_table(features, store, service_sessions)


@pytest.fixture(scope="module")
def model(client: Client, features: int) -> str:
    name = f"churn-mon-{uuid.uuid4().hex[:6]}"
    client.submit_train(features, churn_config(name)).wait(600, progress=False)
    client.deploy(name, "1.0.0", reason="monitored")
    return name


def test_a_check_of_logged_traffic_with_outcomes(
    client: Client,
    model: str,
    table: pd.DataFrame,
    service_env: dict[str, str],
    service_sessions: sessionmaker[Session],
) -> None:
    predictions = []
    for start in range(0, len(table), 250):
        predictions += client.predict(model, records(table.iloc[start : start + 250]))[
            "predictions"
        ]
    truth = dict(zip(table["customer_id"].astype(str), table["label"], strict=True))
    client.record_outcomes(
        model,
        [
            {"prediction_id": p["prediction_id"], "value": float(truth[p["routing_key"]])}
            for p in predictions
        ],
    )
    log = PredictionLog(str(Path(service_env["CIPML_HOME"]) / "predictions"))

    def logged() -> int:
        with transaction(service_sessions) as session:
            return len(log.read(session, model, utcnow() - timedelta(hours=1), utcnow()))

    # Inline predictions reach the log within CIPML_PREDICTION_LOG_FLUSH_S (0.2 s here).
    eventually(lambda: logged() == len(table), timeout=30, what="the predictions in the log")
    handle = client.check(model, window="1h")
    result = handle.wait(120, progress=False)
    assert result["window"]["labelled_rows"] == len(table)
    assert result["window"]["rows"] == len(table)
    assert result["window"]["source"] == "prediction_log"
    # The window is the training customers themselves: nothing drifted, and the model
    # does at least as well as on its holdout.
    assert not result["drifted"] and result["drifted_features"] == []
    performance = result["performance"]
    assert performance["metric"] == "roc_auc" and performance["status"] == "ok"
    assert performance["n"] == len(table)
    health = result["health"]
    assert health["status"] == "healthy" and health["score"] >= 80
    page = Path(result["report"].removeprefix("file://")).read_text()
    assert model in page and "<svg" in page
    with transaction(service_sessions) as session:
        stored = session.scalars(
            select(MonitoringCheck).where(MonitoringCheck.job_id == handle.id)
        ).all()
    assert len(stored) == 1 and stored[0].window_rows == len(table)


@pytest.fixture(scope="module")
def shifted_dataset(client: Client, model: str, table: pd.DataFrame, data_root: Path) -> int:
    """The customers with ``SHIFTED`` multiplied by 3 plus 5, registered."""
    shifted = table.copy()
    for column in SHIFTED:
        shifted[column] = shifted[column] * 3 + 5
    path = data_root / f"{model}-shifted.parquet"
    shifted.to_parquet(path, index=False)
    dataset = client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(120)
    return int(dataset["dataset_id"])


def _stored_result(sessions: sessionmaker[Session], job_id: str) -> dict[str, Any]:
    with transaction(sessions) as session:
        row = session.scalars(select(MonitoringCheck).where(MonitoringCheck.job_id == job_id)).one()
        return dict(row.result)


def test_a_drifted_dataset_is_flagged_with_its_features(
    client: Client, model: str, table: pd.DataFrame, shifted_dataset: int
) -> None:
    result = client.check(model, current_dataset=shifted_dataset).wait(120, progress=False)
    assert result["window"]["source"] == "dataset" and result["window"]["rows"] == len(table)
    assert result["drifted"]
    assert set(SHIFTED) <= set(result["drifted_features"])
    assert "days_since_last_event" not in result["drifted_features"]  # left as it was
    assert result["performance"]["n"] == len(table)  # the dataset has the target column
    assert result["health"]["status"] != "healthy"
    assert any("drift" in reason for reason in result["health"]["reasons"])


def test_a_check_decides_drift_with_its_own_thresholds(
    client: Client, model: str, shifted_dataset: int, service_sessions: sessionmaker[Session]
) -> None:
    """The shifted copy drifts under the default thresholds; a check whose Wasserstein
    threshold is above every effect the default check measured flags nothing, neither a
    feature nor the score, and stores the thresholds it decided with."""
    default = client.check(model, current_dataset=shifted_dataset)
    assert default.wait(120, progress=False)["drifted"]
    measured = _stored_result(service_sessions, default.id)
    assert measured["data_drift"]["thresholds"]["wasserstein"] == 0.1
    drifted = [f for f in measured["data_drift"]["features"] if f["drifted"]]
    assert {f["kind"] for f in drifted} == {"numeric"}  # the Wasserstein threshold decides
    assert measured["prediction_drift"]["drifted"]  # the scores moved with the features
    effects = [f["effect"] for f in [*drifted, measured["prediction_drift"]]]
    assert None not in effects  # no constant reference (its PSI level would decide)
    limit = round(2 * max(effects), 3)
    raised = client.check(
        model, current_dataset=shifted_dataset, drift_thresholds={"wasserstein": limit}
    )
    result = raised.wait(120, progress=False)
    assert not result["drifted"] and result["drifted_features"] == []
    assert not result["prediction_drift"]["drifted"]
    thresholds = _stored_result(service_sessions, raised.id)["data_drift"]["thresholds"]
    assert thresholds == {**measured["data_drift"]["thresholds"], "wasserstein": limit}


def test_a_window_without_traffic_says_no_data(client: Client, model: str) -> None:
    result = client.check(model, window=1e-4).wait(120, progress=False)  # a third of a second
    assert result["window"]["rows"] == 0
    assert result["health"]["status"] == "no_data" and result["health"]["score"] is None
    assert "nothing to check" in result["health"]["reasons"][0]
    with pytest.raises(InvalidRequest, match="window"):
        client.check(model, window="yesterday")


def test_a_models_check_interval_can_be_set_and_reset(client: Client, model: str) -> None:
    assert client.set_check_interval(model, 3600)["check_interval_s"] == 3600
    assert client.deployment(model)["check_interval_s"] == 3600
    client.set_check_interval(model, None)
    assert client.deployment(model)["check_interval_s"] is None
    with pytest.raises(CipmlError) as unknown:
        client.set_check_interval(f"{model}-not-deployed", 60)
    assert unknown.value.code == "deployment_not_found"
    with pytest.raises(InvalidRequest):
        client.set_check_interval(model, -1)


def test_beat_sweeps_one_check_per_deployed_model_per_period(
    client: Client,
    model: str,
    service_env: dict[str, str],
    service_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    interval = 3
    env = {**service_env, "CIPML_DRIFT_CHECK_INTERVAL": str(interval)}
    beats = [BeatProcess(env, tmp_path / f"b{i}", tmp_path / f"b{i}.log") for i in (1, 2)]

    def checks() -> list[Job]:
        with transaction(service_sessions) as session:
            return list(
                session.scalars(
                    select(Job).where(
                        Job.type == "check_model",
                        Job.idempotency_key.like(f"check_model:{model}:{interval}:%"),
                    )
                )
            )

    try:
        for beat in beats:
            beat.start()
        eventually(lambda: len(checks()) >= 2, timeout=60, what="two swept periods")
    finally:
        for beat in beats:
            beat.stop()
    jobs = checks()
    periods = [job.idempotency_key for job in jobs]
    assert len(periods) == len(set(periods))  # two beats, one check job per period
    done = eventually(
        lambda: all(job.status == "SUCCEEDED" for job in checks()) and checks(),
        timeout=120,
        what="the swept checks",
    )
    with transaction(service_sessions) as session:
        stored = session.scalars(
            select(MonitoringCheck).where(MonitoringCheck.job_id.in_([j.id for j in done]))
        ).all()
    assert len(stored) == len(done)


@pytest.fixture(scope="module")
def big_dataset(client: Client, model: str, table: pd.DataFrame, data_root: Path) -> int:
    """300,000 rows: a check of it is busy for seconds, long enough to hit in the middle."""
    big = pd.concat([table] * 300, ignore_index=True)
    path = data_root / f"{model}-big.parquet"
    big.to_parquet(path, index=False)
    return int(
        client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(300)[
            "dataset_id"
        ]
    )


def test_a_check_killed_midway_is_redelivered_and_stored_once(
    client: Client,
    model: str,
    big_dataset: int,
    service_sessions: sessionmaker[Session],
) -> None:
    """The pool process running a check dies (SIGKILL); the job is redelivered at once and
    its second run finds nothing stored twice."""
    handle = client.check(model, current_dataset=big_dataset)
    row = eventually(
        lambda: (
            (r := job_row(service_sessions, handle.id)) and r.status == "RUNNING" and r.worker and r
        ),
        timeout=60,
        interval=0.02,
        what="the check running",
    )
    os.kill(int(row.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    result = handle.result(timeout=300)
    assert result["window"]["rows"] == 300_000
    final = job_row(service_sessions, handle.id)
    assert final is not None and (final.status, final.attempts) == ("SUCCEEDED", 2)
    with transaction(service_sessions) as session:
        stored = session.scalars(
            select(MonitoringCheck).where(MonitoringCheck.job_id == handle.id)
        ).all()
    assert len(stored) == 1


def test_a_database_outage_while_storing_retries_the_check_and_stores_once(
    client: Client,
    model: str,
    big_dataset: int,
    service_sessions: sessionmaker[Session],
    pg_url: str,
) -> None:
    """The check's final write waits on a lock the test holds; the test then kills that
    database session (what a failover or a dropped connection does). The job retries on
    the transient error, computes again, and one result is stored."""
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin) as blocker:
        # SHARE mode: reads go on (the check reads its history first), inserts wait.
        blocker.execute("LOCK TABLE monitoring_checks IN SHARE MODE")
        handle = client.check(model, current_dataset=big_dataset)

        eventually(
            lambda: kill_sessions_waiting_on(pg_url, "monitoring_checks"),
            timeout=120,
            interval=0.05,
            what="the blocked write",
        )
        blocker.rollback()  # the lock goes; the retry can store
    result = handle.result(timeout=300)
    assert result["window"]["rows"] == 300_000
    with transaction(service_sessions) as session:
        started = [e.detail for e in JobRepository(session).events(handle.id, kind="started")]
        stored = session.scalars(
            select(MonitoringCheck).where(MonitoringCheck.job_id == handle.id)
        ).all()
    assert started == [{"redelivered": False, "retry": 0}, {"redelivered": False, "retry": 1}]
    assert len(stored) == 1

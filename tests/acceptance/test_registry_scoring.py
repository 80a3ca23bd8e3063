"""The registry and scoring through real workers on Redis + PostgreSQL: versions, lineage,
aliases with history, verified artifacts, inline and by-reference scoring with per-row
errors, the prediction and outcome logs, erasure of one customer, and retention.

The model is a small churn model on a 1,500-customer slice of the bundled CDNOW log."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import CipmlError, Client, InvalidRequest, JobFailed, TaskName
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.models import Job, ModelVersion
from storage.prediction_log import PredictionLog
from tests.acceptance.churn import churn_config, churn_features, dataset_table, records
from tests.acceptance.helpers import eventually

pytestmark = pytest.mark.slow

CUSTOMERS = 1500


@pytest.fixture(scope="module")
def features(client: Client, data_root: Path) -> int:
    return churn_features(client, data_root, slice(None, CUSTOMERS), "scoring")


@pytest.fixture(scope="module")
def model(client: Client, features: int) -> dict[str, Any]:
    """Two versions of one churn model (seeds 0 and 1: the same schema and family, so the
    second is a patch)."""
    name = f"churn-{uuid.uuid4().hex[:6]}"
    versions = []
    for seed in (0, 1):
        config = churn_config(name, seed)
        versions.append(client.submit_train(features, config).wait(600, progress=False))
    return {"name": name, "versions": versions, "config": config}


@pytest.fixture(scope="module")
def table(
    features: int, store: ArtifactStore, service_sessions: sessionmaker[Session]
) -> pd.DataFrame:
    return dataset_table(features, store, service_sessions)


@pytest.fixture(scope="module")
def prediction_log(service_env: dict[str, str]) -> PredictionLog:
    return PredictionLog(str(Path(service_env["CIPML_HOME"]) / "predictions"))


def test_versions_aliases_history_and_lineage(
    client: Client, model: dict[str, Any], features: int
) -> None:
    name = model["name"]
    listed = client.versions(name)
    assert [v["version"] for v in listed] == ["1.0.0", "1.0.1"]
    assert [v["status"] for v in listed] == ["registered", "registered"]
    first = client.set_alias(name, "champion", "1.0.0", "first release", actor="alice")
    assert first["changed"] and first["revision"] == 1
    between = datetime.now(UTC)
    second = client.set_alias(name, "champion", "1.0.1", "retrained with seed 1", actor="bob")
    assert second["event"]["from_version"] == "1.0.0"
    again = client.set_alias(name, "champion", "1.0.1", "retry", actor="bob")
    assert not again["changed"] and again["revision"] == 2  # a retried move writes nothing
    history = client.alias_history(name, "champion", at=between)
    assert history["version"] == "1.0.0"
    assert [(e["to_version"], e["actor"], e["reason"]) for e in history["events"]] == [
        ("1.0.0", "alice", "first release"),
        ("1.0.1", "bob", "retrained with seed 1"),
    ]
    before = client.alias_history(name, "champion", at=datetime(2020, 1, 1, tzinfo=UTC))
    assert before["version"] is None
    statuses = {v["version"]: (v["status"], v["aliases"]) for v in client.versions(name)}
    assert statuses == {"1.0.0": ("archived", []), "1.0.1": ("deployed", ["champion"])}

    chain = client.lineage(name, "1.0.1")
    assert chain["version"]["version"] == "1.0.1"
    assert chain["training_job"]["type"] == "train"
    assert chain["training_job"]["status"] == "SUCCEEDED"
    assert chain["study"]["name"] == model["versions"][1]["study_name"]
    assert chain["datasets"][0]["id"] == features
    assert len(chain["datasets"]) == 2  # the features, then the ingested log
    assert chain["raw_inputs"][0]["source_uri"].endswith(".parquet")
    assert chain["dataset_sha256_matches"] is True
    assert chain["version"]["package_version"] == "0.1.0"


def test_alias_refusals_and_a_race(client: Client, model: dict[str, Any]) -> None:
    name = model["name"]
    with pytest.raises(CipmlError) as missing:
        client.set_alias(name, "challenger", "9.9.9", "no such version")
    assert missing.value.code == "version_not_found"
    with pytest.raises(CipmlError) as unknown:
        client.versions("no-such-model")
    assert unknown.value.code == "model_not_found"
    with pytest.raises(InvalidRequest):
        client.set_alias(name, "Bad Alias", "1.0.0", "not a valid alias name")
    outcomes: list[str] = []

    def move(version: str) -> None:
        try:
            client.set_alias(name, "candidate", version, "race", expected_revision=0)
            outcomes.append("won")
        except CipmlError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=move, args=(v,)) for v in ("1.0.0", "1.0.1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["alias_conflict", "won"]
    events = client.alias_history(name, "candidate")["events"]
    assert [e["revision"] for e in events] == [1]


def test_inline_predictions_with_per_row_errors_and_the_log(
    client: Client,
    model: dict[str, Any],
    table: pd.DataFrame,
    prediction_log: PredictionLog,
    service_sessions: sessionmaker[Session],
) -> None:
    name = model["name"]
    client.set_alias(name, "champion", "1.0.1", "serve the retrain")
    rows = records(table.head(6))
    schema = model["versions"][1]["input_schema"]
    numeric = next(f["name"] for f in schema if f["kind"] == "numeric")
    rows[1].pop(numeric)  # a missing input
    rows[2][numeric] = float("inf")  # not finite
    rows[3][numeric] = "12"  # a string where a number belongs
    rows[4].pop("customer_id")  # no routing key
    rows[5]["unexpected"] = 1  # ignored, and said so
    answer = client.predict(name, rows)
    assert [p["row"] for p in answer["predictions"]] == [0, 5]
    assert {(e["row"], e["code"]) for e in answer["errors"]} == {
        (1, "column_missing"),
        (2, "value_not_finite"),
        (3, "column_type_mismatch"),
        (4, "routing_key_missing"),
    }
    # Columns training dropped (constants such as the cutoff's calendar) are ignored too.
    names = {f["name"] for f in schema}
    assert "unexpected" in answer["ignored_columns"]
    assert names.isdisjoint(answer["ignored_columns"])
    first = answer["predictions"][0]
    assert first["version"] == "1.0.1" and first["arm"] == "champion"
    assert 0.0 <= first["score"] <= 1.0 and first["label"] in ("0", "1", "False", "True")
    assert first["routing_key"] == str(rows[0]["customer_id"])

    wanted = {p["prediction_id"] for p in answer["predictions"]}
    eventually(  # inline predictions reach the log within CIPML_PREDICTION_LOG_FLUSH_S
        lambda: wanted <= set(read_log(prediction_log, service_sessions, name)["prediction_id"]),
        timeout=30,
        what="the inline predictions in the log",
    )
    logged = read_log(prediction_log, service_sessions, name)
    assert f"feature.{numeric}" in logged.columns

    with pytest.raises(CipmlError) as too_many:
        client.predict(name, records(table.head(1)) * 1001)
    assert too_many.value.code == "batch_too_large"
    assert "score_dataset" in too_many.value.message
    with pytest.raises(CipmlError) as unserved:
        client.predict(name, rows[:1], alias="challenger")
    assert unserved.value.code == "alias_not_set"


def test_score_a_dataset_by_reference_then_outcomes_and_erasure(
    client: Client,
    model: dict[str, Any],
    features: int,
    table: pd.DataFrame,
    data_root: Path,
    store: ArtifactStore,
    prediction_log: PredictionLog,
    service_sessions: sessionmaker[Session],
) -> None:
    name = model["name"]
    client.set_alias(name, "champion", "1.0.1", "serve the retrain")
    handle = client.score_dataset(name, features)
    result = handle.wait(300, progress=False)
    assert result["scored"] == len(table) and result["rejected"] == 0
    with transaction(service_sessions) as session:
        scored = DatasetRepository(session).require(result["dataset_id"])
        assert scored.parent_id == features
        sha = scored.stored_sha256
    with store.open_verified(sha) as stream:
        output = pd.read_parquet(stream)
    assert len(output) == len(table) and output["model_version"].eq("1.0.1").all()
    logged = read_log(prediction_log, service_sessions, name)
    assert set(output["prediction_id"]) <= set(logged["prediction_id"])

    truth = table["label"].astype(int).tolist()
    outcomes = [
        {"prediction_id": pid, "value": float(y)}
        for pid, y in zip(output["prediction_id"][:50], truth[:50], strict=True)
    ]
    first = client.record_outcomes(name, outcomes)
    assert (first["recorded"], first["updated"], first["unknown"]) == (50, 0, 0)
    again = client.record_outcomes(
        name, [*outcomes[:10], {"prediction_id": "0" * 32, "value": 1.0}]
    )
    assert (again["recorded"], again["updated"], again["unknown"]) == (0, 10, 1)

    customer = str(table["customer_id"].iloc[0])
    # A dataset whose file is gone is reported, not fatal: the others are still erased.
    lost = data_root / f"lost-{uuid.uuid4().hex[:6]}.parquet"
    table.head(3)[["customer_id", "label"]].to_parquet(lost, index=False)
    gone = client.submit("ingest_dataset", {"uri": lost.name, "name": lost.stem}).wait(120)
    Path(store.local_path(gone["sha256"])).unlink()
    erased = client.forget_customer(customer, actor="privacy-desk").wait(300, progress=False)
    unreadable = {d["dataset_id"]: d["reason"] for d in erased["unreadable_datasets"]}
    assert unreadable[gone["dataset_id"]].startswith("artifact_not_found")
    assert erased["predictions_removed"] >= 1 and erased["dataset_rows_removed"] >= 2
    after = read_log(prediction_log, service_sessions, name)
    assert customer not in set(after["routing_key"])
    # Exactly this customer's rows go (other models' logs may hold them too: the count is
    # over every model).
    mine = int((logged["routing_key"] == customer).sum())
    assert mine >= 1 and len(after) == len(logged) - mine
    assert erased["predictions_removed"] >= mine
    with transaction(service_sessions) as session:
        dataset = DatasetRepository(session).require(features)
        assert dataset.rows == len(table) - int(
            (table["customer_id"].astype(str) == customer).sum()
        )
        assert dataset.lineage["erasures"][-1]["rows_removed"] >= 1
        job = session.get(Job, erased_job_id(session))
        assert job is not None and job.params["customer_id"] == "<erased>"


def test_rows_a_dataset_cannot_score_are_rejected_one_by_one(
    client: Client,
    model: dict[str, Any],
    table: pd.DataFrame,
    data_root: Path,
    store: ArtifactStore,
    service_sessions: sessionmaker[Session],
) -> None:
    name = model["name"]
    client.set_alias(name, "champion", "1.0.1", "serve the retrain")
    schema = model["versions"][1]["input_schema"]
    numeric = next(f["name"] for f in schema if f["kind"] == "numeric")
    broken = table.head(8).copy()
    broken[numeric] = broken[numeric].astype(float)
    broken.loc[2, numeric] = np.inf
    broken["customer_id"] = broken["customer_id"].astype(object)
    broken.loc[5, "customer_id"] = None
    path = data_root / f"broken-{uuid.uuid4().hex[:6]}.parquet"
    broken.to_parquet(path, index=False)
    ingested = client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(120)
    result = client.score_dataset(name, ingested["dataset_id"]).wait(300, progress=False)
    assert (result["scored"], result["rejected"]) == (6, 2)
    with transaction(service_sessions) as session:
        sha = DatasetRepository(session).require(result["dataset_id"]).stored_sha256
    with store.open_verified(sha) as stream:
        output = pd.read_parquet(stream)
    errors = output["error"].fillna("").tolist()
    assert errors == ["", "", "value_not_finite", "", "", "routing_key_missing", "", ""]
    assert output["score"].isna().tolist() == [i in (2, 5) for i in range(8)]
    assert output["prediction_id"].isna().tolist() == [i in (2, 5) for i in range(8)]
    assert output.loc[0, "arm"] == "champion" and pd.isna(output.loc[2, "arm"])


def test_retention_dry_run_lists_and_touches_nothing(
    client: Client, model: dict[str, Any], service_sessions: sessionmaker[Session]
) -> None:
    result = client.submit("apply_retention", {"dry_run": True}).wait(120, progress=False)
    assert result["dry_run"] is True
    assert result["artifacts"]["deleted"] == []
    with transaction(service_sessions) as session:
        rows = session.scalars(select(ModelVersion).where(ModelVersion.model_name == model["name"]))
        assert {row.status for row in rows} <= {"archived", "deployed", "staged", "registered"}


def test_a_tampered_artifact_is_refused_and_the_alias_stays(
    client: Client, model: dict[str, Any], features: int, store: ArtifactStore
) -> None:
    name = model["name"]
    config = {**model["config"], "seed": 2}
    tampered = client.submit_train(features, config).wait(600, progress=False)
    assert tampered["version"] == "1.0.2"
    path = Path(store.local_path(tampered["artifact_sha256"]))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    before = client.alias_history(name, "champion")["events"]
    with pytest.raises(CipmlError) as refused:
        client.set_alias(name, "champion", "1.0.2", "a version whose file was altered")
    assert refused.value.code == "artifact_corrupt"
    assert "sha256" in refused.value.message
    assert client.alias_history(name, "champion")["events"] == before


def test_beat_retention_ticks_start_one_job_per_period(
    client: Client, service_sessions: sessionmaker[Session]
) -> None:
    for _ in range(2):  # two beats, or one tick delivered twice
        client._app.send_task(TaskName.RETENTION_TICK.value, queue="control")

    def ticked() -> list[Job]:
        with transaction(service_sessions) as session:
            query = select(Job).where(Job.idempotency_key.startswith("apply_retention:"))
            return list(session.scalars(query))

    eventually(
        lambda: ticked() and all(j.status == "SUCCEEDED" for j in ticked()),
        timeout=60,
        what="the retention job of this period",
    )
    time.sleep(1)  # the second tick had time to submit too
    [job] = ticked()
    assert job.type == "apply_retention"
    assert job.result is not None and "predictions" in job.result


def test_unknown_model_and_bad_dataset_fail_with_codes(
    client: Client, model: dict[str, Any]
) -> None:
    with pytest.raises(JobFailed) as failure:
        client.score_dataset("no-such-model", 1).wait(120, progress=False)
    assert failure.value.code == "model_not_found"
    with pytest.raises(JobFailed) as failure:
        client.score_dataset(model["name"], 10**6).wait(120, progress=False)
    assert failure.value.code == "dataset_not_found"


def erased_job_id(session: Session) -> str:
    return str(
        session.scalar(
            select(Job.id).where(Job.type == "forget_customer").order_by(Job.created_at.desc())
        )
    )


def read_log(log: PredictionLog, sessions: sessionmaker[Session], name: str) -> pd.DataFrame:
    """Every logged prediction of the model."""
    with transaction(sessions) as session:
        start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        return log.read(session, name, start, end)

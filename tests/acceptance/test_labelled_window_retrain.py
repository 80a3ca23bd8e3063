"""Retraining on a labelled window through real workers: a churn model is served, scores
a dataset (every prediction logged), the outcomes are recorded, and a train job given only
the parent's config, ``parent_version_id`` and ``labelled_window`` registers a version."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.jobs import JobRepository
from tests.acceptance.churn import churn_config, churn_features, dataset_table

pytestmark = pytest.mark.slow

CUSTOMERS = 600


def test_a_train_job_on_the_last_days_of_labelled_predictions(
    client: Client,
    data_root: Path,
    store: ArtifactStore,
    service_sessions: sessionmaker[Session],
) -> None:
    features = churn_features(client, data_root, slice(None, CUSTOMERS), "window")
    table = dataset_table(features, store, service_sessions)
    name = f"churn-window-{uuid.uuid4().hex[:6]}"
    config = churn_config(name)
    parent = client.submit_train(features, config).wait(600, progress=False)
    client.set_alias(name, "champion", parent["version"], "serve it")
    scored = client.score_dataset(name, features).wait(300, progress=False)
    with transaction(service_sessions) as session:
        sha = DatasetRepository(session).require(scored["dataset_id"]).stored_sha256
    with store.open_verified(sha) as stream:
        output = pd.read_parquet(stream)
    truth = table["label"].astype(int).tolist()
    outcomes = [
        {"prediction_id": pid, "value": float(y)}
        for pid, y in zip(output["prediction_id"], truth, strict=True)
    ]
    assert client.record_outcomes(name, outcomes)["recorded"] == len(outcomes)

    params: dict[str, Any] = {
        **config,
        "parent_version_id": parent["model_version_id"],
        "labelled_window": {"days": 1, "min_rows": 50},
    }
    handle = client.submit("train", params)
    retrained = handle.wait(600, progress=False)
    assert retrained["model_name"] == name and retrained["version"] != parent["version"]
    assert retrained["training"]["positive_class"] == parent["training"]["positive_class"]
    assert [f["name"] for f in retrained["input_schema"]] == [
        f["name"] for f in parent["input_schema"]
    ]
    with transaction(service_sessions) as session:
        stored = JobRepository(session).require(handle.id).params
        dataset = DatasetRepository(session).require(stored["dataset_id"])
        assert dataset.name == f"{name}__labelled_window"
        assert dataset.created_by_job == handle.id
        # score_dataset logs a whole table at one time: no newer rows to hold out.
        assert dataset.rows == len(table)
    window = stored["labelled_window"]
    assert window["until"] is not None and window["evaluation_dataset_id"] is None
    assert stored["exclude"] == []  # customer_id and cutoff are not in the window

"""The model types beside churn through real workers on Redis + PostgreSQL: journey
prediction (multiclass), CLV (regression) under time-ordered grouped validation, lead
scoring with feature selection and a baseline, and segmentation; semantic versions across
retrains; bad inputs refused before any trial.

The data is a slice of the bundled CDNOW log (1,500 customers) with each purchase's basket
size as its event type, so the journey label is the customer's next kind of purchase.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client, InvalidRequest, JobFailed
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from tests.acceptance.conftest import CDNOW, ROOT
from workers.training.artifact import load_pipeline
from workers.training.pipeline import model_frame

pytestmark = pytest.mark.slow

CUSTOMERS = 1500
QUARTERS = ["1997-04-01", "1997-07-01", "1997-10-01", "1998-01-01"]
HORIZON_DAYS = 91  # 13W
IDS = ["customer_id", "cutoff"]
BANK = ROOT / "data" / "bank_marketing_dated.parquet"


@pytest.fixture(scope="module")
def log_slice(client: Client, data_root: Path) -> int:
    events = pd.read_parquet(CDNOW)
    chosen = np.sort(events["customer_id"].unique())[:CUSTOMERS]
    events = events[events["customer_id"].isin(chosen)].copy()
    cds = events["number_of_cds"]
    events["basket"] = np.where(cds == 1, "single", np.where(cds < 4, "few", "many"))
    path = data_root / f"cdnow-slice-{uuid.uuid4().hex[:6]}.parquet"
    events.to_parquet(path, index=False)
    result = client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(120)
    return int(result["dataset_id"])


def features(client: Client, log: int, label: dict[str, Any]) -> int:
    params = {
        "dataset_id": log,
        "customer_id_column": "customer_id",
        "timestamp_column": "date",
        "value_columns": ["dollar_value", "number_of_cds"],
        "category_columns": ["basket"],
        "cutoffs": QUARTERS,
        "rolling_windows": ["30D", "90D"],
        "label": label,
    }
    return int(client.submit("build_features", params).wait(300)["dataset_id"])


@pytest.fixture(scope="module")
def journey(client: Client, log_slice: int) -> int:
    label = {"kind": "next_event_type", "column": "basket", "horizon": "13W"}
    return features(client, log_slice, label)


@pytest.fixture(scope="module")
def spend(client: Client, log_slice: int) -> int:
    label = {"kind": "future_sum", "column": "dollar_value", "horizon": "13W"}
    return features(client, log_slice, label)


def search(**options: Any) -> dict[str, Any]:
    return {"strategy": "random", "n_trials": 4, "parallelism": 2, **options}


def loaded(store: ArtifactStore, result: dict[str, Any]) -> Any:
    data = store.read_bytes(result["artifact_sha256"])
    return load_pipeline(data, result["library_versions"])


def test_journey_prediction_learns_the_next_kind_of_purchase(
    client: Client,
    journey: int,
    store: ArtifactStore,
    service_sessions: sessionmaker[Session],
) -> None:
    config = {
        "model_name": f"journey-{uuid.uuid4().hex[:6]}",
        "model_type": "journey_prediction",
        "exclude": IDS,
        "optimization": search(),
        "validation": {"folds": 3},
        "ensemble": {"methods": []},
    }
    result = client.submit_train(journey, config).wait(600, progress=False)
    training, metrics = result["training"], result["metrics"]
    assert training["problem"] == "multiclass" and result["version"] == "1.0.0"
    assert training["classes"] == ["few", "many", "none", "single"]
    assert training["config"]["optimization"]["families"] == [
        "random_forest",
        "hist_gradient_boosting",
        "logistic_regression",
    ]
    recall = {row["class"]: row["recall"] for row in metrics["per_class"]}
    assert set(recall) == set(training["classes"])
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and metrics["log_loss"] > 0
    # the label's chance level is the majority share; the model must beat uniform guessing
    assert metrics["log_loss"] < np.log(4)
    rows = feature_rows(store, service_sessions, journey, result, 20)
    proba = loaded(store, result).predict_proba(rows)
    assert proba.shape == (20, 4) and np.allclose(proba.sum(axis=1), 1.0)


def feature_rows(
    store: ArtifactStore,
    sessions: sessionmaker[Session],
    dataset_id: int,
    result: dict[str, Any],
    count: int,
) -> pd.DataFrame:
    """The first rows of the feature table, as the version's inputs."""
    with transaction(sessions) as session:
        sha = DatasetRepository(session).require(dataset_id).stored_sha256
    with store.open_verified(sha) as handle:
        table = pd.read_parquet(handle)
    schema = result["input_schema"]
    names = [c["name"] for c in schema]
    text = [c["name"] for c in schema if c["dtype"] in ("str", "object", "string")]
    return model_frame(table[names].head(count), [n for n in names if n not in text], text)


def test_clv_with_time_ordered_folds_grouped_by_customer(client: Client, spend: int) -> None:
    config = {
        "model_name": f"clv-{uuid.uuid4().hex[:6]}",
        "model_type": "clv",
        "exclude": ["cutoff"],
        "optimization": search(
            metric="spearman", families=["ridge", "hist_gradient_boosting", "tweedie"]
        ),
        # the horizon comes from the dataset (build_features recorded 13W)
        "validation": {"strategy": "time_series", "folds": 2, "group_by": "customer_id"},
        "ensemble": {"methods": ["voting"], "top_k": 2},
    }
    result = client.submit_train(spend, config).wait(600, progress=False)
    training, metrics = result["training"], result["metrics"]
    split = training["split"]
    assert split["strategy"] == "time_series" and split["grouped"]
    assert split["horizon_days"] == HORIZON_DAYS
    assert split["holdout_cutoffs"][0].startswith("1998-01-01")
    gap = pd.Timedelta(days=HORIZON_DAYS)
    for window in split["fold_windows"]:
        fit_end = pd.Timestamp(window["fit_cutoff_max"])
        assert fit_end + gap <= pd.Timestamp(window["validate_cutoff_min"])
    assert "customer_id" not in [c["name"] for c in result["input_schema"]]
    assert {"rmse", "mae", "r2", "spearman", "deciles"} <= set(metrics)
    assert metrics["spearman"] > 0.15  # past spend ranks future spend (most spend is 0)
    ensemble = training["ensemble"]
    assert ensemble["chosen"] in ("single", "voting") and "voting" in ensemble
    assert ensemble["margin"] == pytest.approx(ensemble["single"]["standard_error"])


@pytest.fixture(scope="module")
def leads(client: Client, data_root: Path) -> int:
    """2,000 bank-marketing calls without ``duration`` (known only after the call)."""
    bank = pd.read_parquet(BANK).sample(2000, random_state=0)
    bank = bank.drop(columns=["duration", "date", "period", "y"])
    path = data_root / f"bank-{uuid.uuid4().hex[:6]}.parquet"
    bank.to_parquet(path, index=False)
    result = client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(120)
    return int(result["dataset_id"])


def test_lead_scoring_selects_features_inside_the_folds_and_compares_a_baseline(
    client: Client, leads: int
) -> None:
    config = {
        "model_name": f"leads-{uuid.uuid4().hex[:6]}",
        "model_type": "lead_scoring",
        "target": "y01",
        "optimization": search(families=["logistic_regression", "random_forest"]),
        "selection": {"method": "correlation", "max_features": 8},
        "baseline": ["age", "balance", "campaign"],
        "ensemble": {"methods": []},
    }
    result = client.submit_train(leads, config).wait(600, progress=False)
    training = result["training"]
    assert training["positive_class"] == "1" and result["threshold"] is not None
    assert 0 < len(training["selected_features"]) <= 8
    baseline = training["baseline"]
    assert baseline["columns"] == ["age", "balance", "campaign"]
    gap = baseline["model_minus_baseline"]
    assert gap["low"] <= gap["difference"] <= gap["high"]
    assert gap["difference"] == pytest.approx(baseline["model"] - baseline["baseline_score"])


def segmentation(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "model_type": "segmentation",
        "exclude": [*IDS, "label"],
        "optimization": {
            "strategy": "grid",
            "n_trials": 1,
            "families": ["kmeans"],
            "parallelism": 1,
        },
        "segments": {"min": 3, "max": 3},
        **extra,
    }


def test_segmentation_and_semantic_versions(client: Client, spend: int) -> None:
    name = f"segments-{uuid.uuid4().hex[:6]}"
    first = client.submit_train(spend, segmentation(name)).wait(300, progress=False)
    assert first["version"] == "1.0.0" and first["family"] == "kmeans"
    metrics, segments = first["metrics"], first["training"]["segments"]
    assert metrics["n_segments"] == 3 and -1.0 <= metrics["silhouette"] <= 1.0
    assert metrics["davies_bouldin"] > 0
    assert sum(s["rows"] for s in segments["sizes"]) == first["training"]["rows"]["train"]
    assert len(segments["top_features"]) > 0 and len(segments["segments"]) == 3
    # a retrain of the same inputs and family bumps the patch
    again = client.submit_train(spend, segmentation(name, seed=1)).wait(300, progress=False)
    assert again["version"] == "1.0.1"
    assert again["training"]["semver"]["part"] == "patch"
    # another family bumps the minor
    other = segmentation(name)
    other["optimization"]["families"] = ["minibatch_kmeans"]
    third = client.submit_train(spend, other).wait(300, progress=False)
    assert third["version"] == "1.1.0"
    # a removed input bumps the major
    fewer = segmentation(name, exclude=[*IDS, "label", "frequency"])
    fourth = client.submit_train(spend, fewer).wait(300, progress=False)
    assert fourth["version"] == "2.0.0"
    assert "removed frequency" in fourth["training"]["semver"]["reason"]


BAD = [
    ("journey", {"model_type": "clv"}, "target_not_numeric"),
    (
        "spend",
        {"model_type": "clv", "selection": {"method": "correlation", "max_features": 999}},
        "max_features_too_large",
    ),
    (
        "spend",
        {"model_type": "clv", "validation": {"strategy": "time_series", "folds": 5}},
        "too_few_cutoffs",
    ),
    (
        "spend",
        {"model_type": "clv", "validation": {"strategy": "time_series", "cutoff_column": "x"}},
        "column_missing",
    ),
]


@pytest.mark.parametrize(("table", "change", "code"), BAD)
def test_bad_inputs_fail_with_their_codes_before_any_trial(
    client: Client, journey: int, spend: int, table: str, change: dict[str, Any], code: str
) -> None:
    config = {"model_name": "bad", "exclude": IDS, "optimization": search(), **change}
    dataset = journey if table == "journey" else spend
    with pytest.raises(JobFailed) as failure:
        client.submit_train(dataset, config).wait(120, progress=False)
    assert failure.value.code == code, failure.value


def test_segmentation_with_a_target_is_refused_by_the_client(client: Client, spend: int) -> None:
    with pytest.raises(InvalidRequest, match="segmentation learns without a target"):
        client.submit_train(spend, segmentation("s", target="label"))

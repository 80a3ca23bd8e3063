"""A small churn model on a slice of the bundled CDNOW log, as the registry, rollout and
monitoring acceptance tests build it: features per customer, a fast training config,
and rows as a client sends them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from tests.acceptance.conftest import CDNOW

IDS = ["customer_id", "cutoff"]


def churn_features(client: Client, data_root: Path, customers: slice, name: str) -> int:
    """The features dataset (churn label at 1997-10-01) of the customers at ``customers``
    in id order: its dataset id."""
    events = pd.read_parquet(CDNOW)
    chosen = np.sort(events["customer_id"].unique())[customers]
    path = data_root / f"cdnow-{name}-{uuid.uuid4().hex[:6]}.parquet"
    events[events["customer_id"].isin(chosen)].to_parquet(path, index=False)
    log = client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(120)
    params = {
        "dataset_id": log["dataset_id"],
        "customer_id_column": "customer_id",
        "timestamp_column": "date",
        "value_columns": ["dollar_value", "number_of_cds"],
        "cutoffs": ["1997-10-01"],
        "rolling_windows": ["30D", "90D"],
        "label": {"kind": "churn", "horizon": "39W"},
    }
    return int(client.submit("build_features", params).wait(300)["dataset_id"])


def dataset_table(
    dataset_id: int, store: ArtifactStore, sessions: sessionmaker[Session]
) -> pd.DataFrame:
    with transaction(sessions) as session:
        sha = DatasetRepository(session).require(dataset_id).stored_sha256
    with store.open_verified(sha) as handle:
        return pd.read_parquet(handle)


def churn_config(name: str, seed: int = 0) -> dict[str, Any]:
    """Two random logistic-regression trials, 3 folds, no ensemble: seconds to train."""
    return {
        "model_name": name,
        "model_type": "churn",
        "target": "label",
        "exclude": IDS,
        "optimization": {
            "strategy": "random",
            "n_trials": 2,
            "parallelism": 1,
            "families": ["logistic_regression"],
        },
        "validation": {"folds": 3},
        "ensemble": {"methods": []},
        "seed": seed,
    }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: plain JSON values, without the label and cutoff."""
    plain = frame.drop(columns=["label", "cutoff"]).astype(object)
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in plain.to_dict("records")
    ]

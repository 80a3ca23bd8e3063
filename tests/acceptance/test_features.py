"""build_features through real workers on Redis + PostgreSQL: CDNOW churn features, the same
table bit for bit from 1 or 3 partitions, per-event features, and bad inputs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client, InvalidRequest, JobFailed
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from tests.acceptance.helpers import row_counts
from workers.demo import churn_features_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def churn(client: Client, cdnow: int) -> dict[str, Any]:
    result: dict[str, Any] = client.submit("build_features", churn_features_params(cdnow)).wait(300)
    return result


def test_cdnow_churn_features(
    churn: dict[str, Any], cdnow: int, store: ArtifactStore, service_sessions: sessionmaker[Session]
) -> None:
    # Every CDNOW customer first bought in Q1 1997: all 23,570 are customers at 1997-10-01,
    # and the 39 weeks after it end 1998-06-30, the last day of the data.
    assert churn["rows"] == 23_570
    assert 0.65 <= churn["label"]["mean"] <= 0.75  # about 70% never buy again
    assert churn["features"] >= 90
    table = pd.read_parquet(store.local_path(churn["sha256"]))
    for name in (
        "days_since_last_event",
        "frequency",
        "dollar_value__sum",
        "dollar_value__lag_1",
        "days_between_events__lag_1",
        "dollar_value__std__90D",
        "events__count__7D",
        "cutoff__is_holiday",
        "last_event__dayofweek_sin",
        "activity__fourier_sin_3",
        "activity__trend_slope",
        "activity__change_score",
        "label",
    ):
        assert name in table.columns, name
    assert list(table.columns[:2]) == ["customer_id", "cutoff"]
    assert (table["cutoff"] == pd.Timestamp("1997-10-01")).all()
    assert (table["days_since_last_event"] > 0).all()  # only events before the cutoff
    with transaction(service_sessions) as session:
        dataset = DatasetRepository(session).require(churn["dataset_id"])
        assert dataset.parent_id == cdnow
        assert (dataset.lineage or {})["log"]["events_after_merge"] == 67_591


def test_partitions_give_the_same_table_bit_for_bit(
    client: Client, cdnow: int, churn: dict[str, Any]
) -> None:
    params = {**churn_features_params(cdnow), "partitions": 3, "name": "cdnow-churn-parts"}
    handle = client.submit("build_features", params)
    split = handle.wait(300)
    assert split["sha256"] == churn["sha256"]
    assert split["dataset_id"] != churn["dataset_id"]  # a second dataset, identical bytes


def test_monthly_cutoffs_exclude_horizons_past_the_data(client: Client, cdnow: int) -> None:
    params = {
        **churn_features_params(cdnow),
        "cutoffs": {"every": "month", "from": "1997-04-01", "to": "1998-03-01"},
        "label": {"kind": "churn", "horizon": "26W"},
        "name": "cdnow-monthly",
    }
    result = client.submit("build_features", params).wait(300)
    counts = result["counts"]
    # Cutoffs from 1998-01-01 on have 26 weeks running past 1998-06-30: excluded, counted.
    assert counts["excluded_horizon_past_data"] > 0
    assert result["rows"] == counts["labelled"]


def test_per_event_features(client: Client, cdnow: int, store: ArtifactStore) -> None:
    params = {
        "dataset_id": cdnow,
        "customer_id_column": "customer_id",
        "timestamp_column": "date",
        "value_columns": ["dollar_value"],
        "granularity": "event",
        "lag_periods": [1, 7, 30],
        "rolling_windows": ["7D", "14D", "30D", "90D"],
        "name": "cdnow-events",
    }
    result = client.submit("build_features", params).wait(300)
    assert result["rows"] == 67_591  # one row per merged event
    split = {**params, "partitions": 2, "name": "cdnow-events-parts"}
    assert client.submit("build_features", split).wait(300)["sha256"] == result["sha256"]
    table = pd.read_parquet(store.local_path(result["sha256"]))
    first = table.groupby("customer_id").head(1)
    assert first["days_since_previous_event"].isna().all()


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def odd_logs(client: Client, data_root: Path) -> dict[str, int]:
    logs = {
        "unparseable": ["2024-01-01", "2024-01-02", "not a time", "2024-01-04"],
        "mixed_zones": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00", "2024-01-03", "2024-01-04"],
    }
    ids = {}
    for kind, times in logs.items():
        frame = pd.DataFrame({"customer": ["a", "a", "b", "b"], "t": times, "v": [1, 2, 3, 4]})
        path = data_root / f"{kind}-{uuid.uuid4().hex[:6]}.csv"
        frame.to_csv(path, index=False)
        result = client.submit(
            "ingest_dataset", {"uri": path.name, "name": path.stem, "dtypes": {"t": "string"}}
        ).wait(120)
        ids[kind] = int(result["dataset_id"])
    return ids


def _params(dataset_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "customer_id_column": "customer",
        "timestamp_column": "t",
        "value_columns": ["v"],
        "cutoffs": ["2024-01-03"],
        **extra,
    }


def test_bad_logs_fail_with_their_codes(
    client: Client, odd_logs: dict[str, int], cdnow: int, service_sessions: sessionmaker[Session]
) -> None:
    cases = [
        (_params(odd_logs["unparseable"]), "timestamp_unparseable", "not a time"),
        (_params(odd_logs["mixed_zones"]), "timestamp_timezone_mixed", "offset"),
        (_params(odd_logs["unparseable"], customer_id_column="nope"), "column_missing", "nope"),
        (
            {**churn_features_params(cdnow), "holidays_country": "XX"},
            "unknown_holiday_country",
            "XX",
        ),
        ({**churn_features_params(cdnow), "cutoffs": ["1990-01-01"]}, "no_rows", "before"),
        ({**churn_features_params(cdnow), "cutoffs": ["1998-06-01"]}, "no_rows", "horizon"),
    ]
    for params, code, words in cases:
        before = row_counts(service_sessions)
        with pytest.raises(JobFailed) as failure:
            client.submit("build_features", params).wait(120)
        assert failure.value.code == code, (params, failure.value)
        assert words in str(failure.value)
        assert row_counts(service_sessions)["datasets"] == before["datasets"]


def test_bad_params_are_refused_by_the_client(client: Client, cdnow: int) -> None:
    for extra in ({"rolling_windows": ["0D"]}, {"rolling_windows": ["-7D"]}, {"cutoffs": []}):
        with pytest.raises(InvalidRequest):
            client.submit("build_features", {**churn_features_params(cdnow), **extra})

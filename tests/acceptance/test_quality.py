"""assess_quality and clean through real workers on Redis + PostgreSQL, on the bundled CDNOW
log and the bank-marketing table: reports, lineage, the fitted pipeline, and bad inputs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client, InvalidRequest, JobFailed
from api_client.contract import CONTRACT_VERSION, TaskName
from storage.artifact_store import ArtifactStore
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.quality_reports import QualityReportRepository
from tests.acceptance.conftest import ingest
from tests.acceptance.helpers import eventually, job_row, row_counts
from workers.preprocessing.cleaning import load_pipeline

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "data" / "bank_marketing_dated.parquet"


@pytest.fixture(scope="module")
def bank(client: Client, data_root: Path) -> int:
    return ingest(client, data_root, BANK, f"bank-{uuid.uuid4().hex[:6]}")


def report_of(store: ArtifactStore, result: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(store.read_bytes(result["json_sha256"]))
    return report


def test_cdnow_report_is_stored_readable_and_reproducible(
    client: Client, cdnow: int, store: ArtifactStore, service_sessions: sessionmaker[Session]
) -> None:
    params = {"dataset_id": cdnow, "as_of": "1998-07-01T00:00:00Z"}
    handle = client.submit("assess_quality", params)
    result = handle.wait(120)

    report = report_of(store, result)
    assert report["dataset"]["id"] == cdnow and report["dataset"]["rows"] == 69_659
    assert report["table"]["duplicate_rows"] == 255  # exact repeats in the published log
    assert report["time"]["column"] == "date"
    assert report["time"]["last"] == "1998-06-30T00:00:00Z"
    assert report["time"]["last_event_age_days"] == 1.0
    assert result["scores"] == report["scores"]
    assert report["scores"]["uniqueness"] == round(100 * (1 - 255 / 69_659), 1)
    assert set(report["scores"]) == {
        "completeness", "validity", "consistency", "uniqueness", "timeliness", "overall",
    }  # fmt: skip
    assert any(r["action"] == "drop_duplicate_rows" for r in report["recommendations"])
    html = store.read_bytes(result["html_sha256"]).decode()
    assert "dollar_value" in html and "<svg" in html and "http://" not in html
    with transaction(service_sessions) as session:
        row = QualityReportRepository(session).by_job(handle.id)
        assert row is not None and row.dataset_id == cdnow
        assert row.json_sha256 == result["json_sha256"]

    # A time without a zone is UTC: the same as_of, the same report.
    naive = {"dataset_id": cdnow, "as_of": "1998-07-01T00:00:00"}
    again = client.submit("assess_quality", naive).wait(120)
    assert again["json_sha256"] == result["json_sha256"], "same input must give the same bytes"
    assert again["html_sha256"] == result["html_sha256"]
    assert again["report_id"] != result["report_id"]


def test_bank_report_finds_the_contact_break(
    client: Client, bank: int, store: ArtifactStore
) -> None:
    result = client.submit(
        "assess_quality", {"dataset_id": bank, "as_of": "2010-12-01T00:00:00Z"}
    ).wait(120)
    report = report_of(store, result)
    contact = next(c for c in report["columns"] if c["name"] == "contact")
    breaks = contact["period_breaks"]
    assert [(b["start"], b["end"], b["value"]) for b in breaks] == [
        ("2008-05", "2008-06", "unknown")
    ]
    assert breaks[0]["share"] == 1.0 and breaks[0]["elsewhere_share"] < 0.05
    top = report["recommendations"][0]
    assert top["column"] in {"contact", "poutcome"} and top["action"] == "investigate_period_break"
    assert any(
        "`contact`" in text and "2008-05..2008-06" in text for text in result["recommendations"]
    )
    month = next(c for c in report["columns"] if c["name"] == "month")
    assert month["period_breaks"] == [], "a column derived from the date is not a break"
    assert result["findings"]["high"] >= 1


def test_clean_cdnow_registers_lineage_and_a_pipeline_that_reproduces_it(
    client: Client, cdnow: int, store: ArtifactStore, service_sessions: sessionmaker[Session]
) -> None:
    params = {
        "dataset_id": cdnow,
        "fit_on": {"time_column": "date", "before": "1997-10-01"},
        "exclude": ["customer_id", "date"],
        "outliers": {
            "cap": "quantile",
            "quantiles": [0.0, 0.99],
            "isolation_forest": {"columns": ["dollar_value", "number_of_cds"]},
        },
    }
    handle = client.submit("clean", params)
    result = handle.wait(180)
    assert result["parent_dataset_id"] == cdnow
    assert result["duplicates_dropped"] == 255
    assert result["rows"] == 69_659 - 255
    assert result["steps"] == ["impute", "cap_outliers", "flag_outliers"]  # no text column left

    with transaction(service_sessions) as session:
        datasets = DatasetRepository(session)
        cleaned, parent = datasets.require(result["dataset_id"]), datasets.require(cdnow)
        assert cleaned.parent_id == cdnow and cleaned.created_by_job == handle.id
        assert cleaned.pipeline_sha256 == result["pipeline_sha256"]
        lineage = cleaned.lineage or {}
        parent_sha = parent.stored_sha256
    assert lineage["parent_sha256"] == parent_sha
    assert lineage["fit_rows"] < lineage["rows_in"]
    assert set(lineage["libraries"]) >= {"scikit-learn", "numpy", "pandas", "skops"}

    # The stored pipeline, loaded safely and verified, reproduces the cleaned table.
    pipeline = load_pipeline(store.read_bytes(result["pipeline_sha256"]))
    raw = pd.read_parquet(store.local_path(parent_sha)).drop_duplicates().reset_index(drop=True)
    stored = pd.read_parquet(store.local_path(result["sha256"]))
    pd.testing.assert_frame_equal(pipeline.transform(raw), stored, check_dtype=False)
    assert set(stored["is_outlier"].unique()) <= {0, 1} and stored["is_outlier"].sum() > 0

    # Capping bounds come from the training period only (before 1997-10-01).
    cap = pipeline.named_steps["cap_outliers"]
    train = raw[raw["date"] < "1997-10-01"]
    assert cap.upper_["dollar_value"] == pytest.approx(train["dollar_value"].quantile(0.99))
    assert cap.upper_["dollar_value"] != pytest.approx(raw["dollar_value"].quantile(0.99))

    # A redelivered job (same id) returns the same dataset, not a second version.
    again = client.job(handle.id)
    assert again.result is not None and again.result["dataset_id"] == result["dataset_id"]


def test_clean_bank_fits_on_2008_and_scales(
    client: Client, bank: int, store: ArtifactStore
) -> None:
    result = client.submit(
        "clean",
        {
            "dataset_id": bank,
            "name": f"bank-clean-{uuid.uuid4().hex[:6]}",
            "fit_on": {"time_column": "date", "before": "2009-01-01"},
            "exclude": ["y", "y01", "date", "period"],
            "outliers": {"cap": "iqr", "columns": ["balance"], "robust_scale": ["duration"]},
        },
    ).wait(180)
    stored = pd.read_parquet(store.local_path(result["sha256"]))
    raw = pd.read_parquet(BANK)
    train = raw[raw["date"] < "2009-01-01"]
    q1, q3 = np.quantile(train["balance"], [0.25, 0.75])
    assert stored["balance"].max() == pytest.approx(q3 + 1.5 * (q3 - q1))
    median, iqr = (
        train["duration"].median(),
        np.subtract(*np.quantile(train["duration"], [0.75, 0.25])),
    )
    assert stored["duration"].iloc[0] == pytest.approx((raw["duration"].iloc[0] - median) / iqr)
    assert list(stored.columns) == list(raw.columns)


# ---------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def odd_table(client: Client, data_root: Path) -> int:
    """Text in a numeric-looking column, an all-empty column, a 10,000-level categorical."""
    rng = np.random.default_rng(0)
    rows = 12_000
    amount = [str(round(x, 2)) for x in rng.gamma(2, 20, rows)]
    amount[::500] = ["abc"] * len(amount[::500])
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(rows)],
            "city": rng.choice(
                ["NY", "ny ", "Boston", "boston", "LA"], rows, p=[0.4, 0.1, 0.3, 0.1, 0.1]
            ),
            "amount": amount,
            "empty": [""] * rows,
            "sku": [f"sku-{i % 10_000}" for i in range(rows)],
            "date": pd.date_range("2024-01-01", periods=rows, freq="h").astype(str),
        }
    )
    path = data_root / f"odd-{uuid.uuid4().hex[:6]}.csv"
    frame.to_csv(path, index=False)
    result = client.submit(
        "ingest_dataset",
        {"uri": path.name, "name": path.stem, "dtypes": {"date": "timestamp", "amount": "string"}},
    ).wait(120)
    return int(result["dataset_id"])


def test_odd_columns_are_reported_not_crashed_on(
    client: Client, odd_table: int, store: ArtifactStore
) -> None:
    result = client.submit(
        "assess_quality", {"dataset_id": odd_table, "declared_types": {"amount": "numeric"}}
    ).wait(120)
    report = report_of(store, result)
    columns = {c["name"]: c for c in report["columns"]}
    assert columns["amount"]["metrics"]["type_conformance"] == pytest.approx(1 - 24 / 12_000)
    assert columns["empty"]["metrics"]["missing_share"] == 1.0
    assert columns["sku"]["metrics"]["high_cardinality"] is True
    assert len(columns["sku"]["top_values"]) == 20 and columns["sku"]["other_count"] > 0
    assert columns["city"]["metrics"]["inconsistent_spelling_share"] > 0
    assert report["scores"]["validity"] < 100
    html = store.read_bytes(result["html_sha256"]).decode()
    assert html.count("sku-") < 100, "the 10,000-level chart is capped"

    cleaned = client.submit(
        "clean",
        {
            "dataset_id": odd_table,
            "exclude": ["customer_id", "date", "amount"],
            "drop_columns": ["sku"],
        },
    ).wait(120)
    assert cleaned["left_untouched_all_missing"] == ["empty"]
    assert cleaned["columns_dropped"] == ["sku"]
    stored = pd.read_parquet(store.local_path(cleaned["sha256"]))
    assert list(stored.columns) == ["customer_id", "city", "amount", "empty", "date"]
    assert set(stored["city"].unique()) == {"NY", "Boston", "LA"}


# (job type, which dataset, extra params, expected code)
BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("assess_quality", "unknown", {}, "dataset_not_found"),
    ("clean", "unknown", {}, "dataset_not_found"),
    ("assess_quality", "empty", {}, "dataset_empty"),
    ("clean", "empty", {}, "dataset_empty"),
    ("assess_quality", "cdnow", {"key_columns": ["nope"]}, "column_missing"),
    (
        "clean",
        "cdnow",
        {"missing": {"columns": {"nope": {"strategy": "median"}}}},
        "column_missing",
    ),
    (
        "clean",
        "cdnow",
        {"missing": {"columns": {"customer_id": {"strategy": "median"}}}},
        "column_type_mismatch",
    ),
    (
        "clean",
        "cdnow",
        {"missing": {"columns": {"dollar_value": {"strategy": "knn"}}}},
        "input_too_large",
    ),
    ("clean", "cdnow", {"fit_on": {"time_column": "date", "before": "1990-01-01"}}, "no_rows"),
]


@pytest.fixture(scope="module")
def empty_dataset(service_sessions: sessionmaker[Session], store: ArtifactStore) -> int:
    """A registered dataset with no rows (ingest refuses to make one, a bug or a restore may)."""
    from storage.artifacts import ArtifactRepository
    from storage.models import Dataset

    path = store.scratch_dir() or "/tmp"
    file = Path(path) / f"empty-{uuid.uuid4().hex}.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(file)
    stored = store.put_file(file, move=True)
    with transaction(service_sessions) as session:
        ArtifactRepository(session).record(stored)
        dataset, _ = DatasetRepository(session).register(
            Dataset(name=f"empty-{uuid.uuid4().hex[:6]}", stored_sha256=stored.sha256, rows=0,
                    columns=1, schema=[])
        )  # fmt: skip
        session.flush()
        return dataset.id


@pytest.mark.parametrize(("job_type", "target", "extra", "code"), BAD)
def test_bad_input_fails_with_its_code_and_changes_nothing(
    client: Client,
    cdnow: int,
    empty_dataset: int,
    service_sessions: sessionmaker[Session],
    job_type: str,
    target: str,
    extra: dict[str, Any],
    code: str,
) -> None:
    dataset_id = {"unknown": 999_999, "empty": empty_dataset, "cdnow": cdnow}[target]
    before = row_counts(service_sessions)
    handle = client.submit(job_type, {"dataset_id": dataset_id, **extra})
    with pytest.raises(JobFailed) as failure:
        handle.wait(120)
    assert failure.value.code == code, failure.value
    after = row_counts(service_sessions)
    assert after["datasets"] == before["datasets"] and after["artifacts"] == before["artifacts"]
    assert client.submit("diagnostics.probe", {}).wait(60) is not None  # still serving


def test_unknown_strategy_is_refused_by_the_client_and_by_the_worker(
    client: Client, cdnow: int, service_sessions: sessionmaker[Session]
) -> None:
    params = {"dataset_id": cdnow, "missing": {"numeric": {"strategy": "magic"}}}
    with pytest.raises(InvalidRequest, match="strategy"):
        client.submit("clean", params)
    job_id = f"raw-{uuid.uuid4().hex}"
    client._app.send_task(
        TaskName.SUBMIT.value,
        args=[
            {"contract": CONTRACT_VERSION, "job_id": job_id, "job_type": "clean", "params": params}
        ],
        queue="control",
    )

    def failed() -> Any:
        row = job_row(service_sessions, job_id)
        return row if row is not None and row.status == "FAILED" else None

    job = eventually(failed, what="the raw clean job to end FAILED")
    assert job.error_code == "invalid_params" and "strategy" in (job.error_message or "")

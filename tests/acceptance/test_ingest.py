"""ingest_dataset through real workers on Redis + PostgreSQL: the registered row, the
Parquet file and its hash, dedupe, versions, and every bad input."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client, JobFailed
from storage.datasets import DatasetRepository
from storage.db import transaction
from tests.acceptance.helpers import row_counts
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_root(service_env: dict[str, str]) -> Path:
    return Path(service_env["CIPML_DATA_ROOTS"])


@pytest.fixture(scope="module")
def artifact_root(service_env: dict[str, str]) -> Path:
    return Path(service_env["CIPML_ARTIFACT_ROOT"])


def orders_csv(path: Path, rows: int, tail: str = "") -> Path:
    with path.open("w") as handle:
        handle.write("customer_id,date,amount,items\n")
        for i in range(rows):
            handle.write(
                f"c{i % 997},2024-{1 + i % 12:02d}-{1 + i % 28:02d},{i % 500 * 1.25},{i % 7}\n"
            )
        handle.write(tail)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def artifact_files(root: Path) -> set[str]:
    return {p.name for p in (root / "sha256").rglob("*") if p.is_file()} if root.exists() else set()


def test_csv_becomes_a_verified_parquet_dataset(
    client: Client, data_root: Path, artifact_root: Path, service_sessions: sessionmaker[Session]
) -> None:
    source = orders_csv(data_root / f"orders-{uuid.uuid4().hex[:6]}.csv", 60_000)
    name = f"orders-{uuid.uuid4().hex[:6]}"
    handle = client.submit("ingest_dataset", {"uri": source.name, "name": name})
    result = handle.wait(timeout=120, progress=False)
    assert (result["rows"], result["columns"], result["version"]) == (60_000, 4, 1)
    assert result["source_sha256"] == sha256_of(source)
    assert result["blocks"] >= 2 and not result["deduplicated"]
    stored = next((artifact_root / "sha256").rglob(result["sha256"]))
    assert sha256_of(stored) == result["sha256"]
    table = pq.read_table(stored)
    assert table.num_rows == 60_000
    assert [str(t) for t in table.schema.types] == ["string", "date32[day]", "double", "int64"]
    with transaction(service_sessions) as session:
        row = DatasetRepository(session).require(result["dataset_id"])
        assert (row.name, row.rows, row.columns, row.created_by_job) == (name, 60_000, 4, handle.id)
        assert row.stored_sha256 == result["sha256"] and row.source_uri == source.as_uri()
    info = client.job(handle.id)
    assert info.progress is not None and info.progress.line.startswith("ingest: done, 60,000 rows")

    again = client.submit("ingest_dataset", {"uri": source.name, "name": name}).result(timeout=60)
    assert again["dataset_id"] == result["dataset_id"] and again["deduplicated"]

    changed = orders_csv(data_root / f"orders-v2-{uuid.uuid4().hex[:6]}.csv", 100)
    second = client.submit("ingest_dataset", {"uri": changed.name, "name": name}).result(timeout=60)
    assert second["version"] == 2 and second["dataset_id"] != result["dataset_id"]


def test_the_bundled_parquet(client: Client, data_root: Path) -> None:
    shutil.copyfile(ROOT / "data" / "cdnow_transactions.parquet", data_root / "cdnow.parquet")
    result = client.submit("ingest_dataset", {"uri": "cdnow.parquet", "name": "cdnow"}).result(
        timeout=120
    )
    assert (result["rows"], result["columns"]) == (69_659, 4)


def test_a_type_change_halfway_is_widened(client: Client, data_root: Path) -> None:
    source = orders_csv(data_root / "halfway.csv", 100_000, tail="c1,2024-01-01,3.5,2.5\n")
    result = client.submit("ingest_dataset", {"uri": source.name, "name": "halfway"}).result(
        timeout=120
    )
    assert result["rows"] == 100_001 and result["blocks"] >= 2
    assert list(result["widened"]) == ["items"]
    assert {c["name"]: c["dtype"] for c in result["schema"]}["items"] == "double"


def _write(data_root: Path) -> dict[str, Callable[[], str]]:
    def text(name: str, content: str | bytes) -> Callable[[], str]:
        def make() -> str:
            path = data_root / name
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            return name

        return make

    def symlink() -> str:
        outside = data_root.parent / "outside.csv"
        outside.write_text("a\n1\n")
        link = data_root / "link.csv"
        if not link.is_symlink():
            link.symlink_to(outside)
        return "link.csv"

    def truncated() -> str:
        whole = (ROOT / "data" / "cdnow_transactions.parquet").read_bytes()
        (data_root / "cut.parquet").write_bytes(whole[: len(whole) // 2])
        return "cut.parquet"

    def halfway_declared() -> str:
        orders_csv(data_root / "declared.csv", 100_000, tail="c1,2024-01-01,3.5,2.5\n")
        return "declared.csv"

    wide = ",".join(f"c{i}" for i in range(2001))
    return {
        "missing": lambda: "no-such-file.csv",
        "dotdot": lambda: "../outside.csv",
        "symlink": symlink,
        "empty": text("empty.csv", ""),
        "header_only": text("header.csv", "a,b\n"),
        "ragged": text("ragged.csv", "a,b\n1,2\n3,4,5\n"),
        "not_utf8": text("latin.csv", "a,b\n1,caf\xe9\n".encode("latin-1")),
        "duplicate_columns": text("dup.csv", "a,b,a\n1,2,3\n"),
        "too_many_columns": text("wide.csv", wide + "\n" + ",".join(["1"] * 2001) + "\n"),
        "truncated_parquet": truncated,
        "type_change_declared": halfway_declared,
    }


@pytest.mark.parametrize(
    ("case", "code", "dtypes"),
    [
        ("missing", "dataset_not_found", None),
        ("dotdot", "path_outside_root", None),
        ("symlink", "path_outside_root", None),
        ("empty", "empty_file", None),
        ("header_only", "no_rows", None),
        ("ragged", "parse_error", None),
        ("not_utf8", "encoding_error", None),
        ("duplicate_columns", "duplicate_columns", None),
        ("too_many_columns", "too_many_columns", None),
        ("truncated_parquet", "unreadable_file", None),
        ("type_change_declared", "schema_mismatch", {"items": "int64"}),
    ],
)
def test_bad_input_fails_cleanly(
    client: Client,
    worker: WorkerProcess,
    data_root: Path,
    artifact_root: Path,
    service_sessions: sessionmaker[Session],
    case: str,
    code: str,
    dtypes: dict | None,
) -> None:
    uri = _write(data_root)[case]()
    before, files_before = row_counts(service_sessions), artifact_files(artifact_root)
    params: dict = {"uri": uri, "name": f"bad-{case}"}
    if dtypes:
        params["dtypes"] = dtypes
    with pytest.raises(JobFailed) as caught:
        client.submit("ingest_dataset", params).result(timeout=120)
    assert caught.value.code == code
    assert len(caught.value.message) > 30
    after = row_counts(service_sessions)
    assert after["jobs"] == before["jobs"] + 1
    assert (after["datasets"], after["artifacts"]) == (before["datasets"], before["artifacts"])
    assert artifact_files(artifact_root) == files_before
    assert worker.alive()
    assert client.submit("diagnostics.probe", {}).result(timeout=30)["steps"] == 1


def test_params_are_checked_before_sending(client: Client) -> None:
    from api_client import InvalidRequest

    with pytest.raises(InvalidRequest, match="name"):
        client.submit("ingest_dataset", {"uri": "a.csv", "name": "has spaces"})
    with pytest.raises(InvalidRequest, match="dtypes"):
        client.submit("ingest_dataset", {"uri": "a.csv", "name": "a", "dtypes": {"x": "int32"}})
    assert pa  # pyarrow is what the worker writes with

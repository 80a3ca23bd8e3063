"""Ingest on small files: path confinement, schema enforcement and widening, every refusal."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from api_client.contract import ErrorCode
from workers.jobs.errors import JobError
from workers.preprocessing.ingest import Limits, hash_source, human, ingest
from workers.preprocessing.sources import resolve_source

LIMITS = Limits(max_columns=10, max_rows=1_000_000, block_bytes=64 * 1024)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


def run(
    root: Path, name: str, declared: dict[str, str] | None = None, limits: Limits = LIMITS
) -> tuple[pa.Table, dict]:
    out = root.parent / "out.parquet"
    lines: list[str] = []
    source = resolve_source(name, [str(root)])
    outcome = ingest(source, str(out), declared, limits, lambda s, d, t, line: lines.append(line))
    return pq.read_table(out), {"outcome": outcome, "lines": lines}


def refused(
    root: Path, name: str, declared: dict[str, str] | None = None, limits: Limits = LIMITS
) -> JobError:
    with pytest.raises(JobError) as caught:
        run(root, name, declared, limits)
    return caught.value


def test_csv_round_trip_with_inferred_types(root: Path) -> None:
    (root / "orders.csv").write_text(
        "customer_id,amount,when,vip\nc1,10.5,2024-01-02,true\nc2,3,2024-01-03,false\n"
    )
    table, info = run(root, "orders.csv")
    assert table.num_rows == 2
    assert [str(t) for t in table.schema.types] == ["string", "double", "date32[day]", "bool"]
    assert table.column("amount").to_pylist() == [10.5, 3.0]
    assert info["outcome"].widened == {}
    assert info["lines"][-1] == "ingest: 1/1 blocks, 2 rows"


def test_type_change_after_the_first_block_widens_and_rereads(root: Path) -> None:
    rows = [f"{i},x{i}" for i in range(20_000)] + ["2.5,y", "7,z"]
    (root / "big.csv").write_text("n,s\n" + "\n".join(rows) + "\n")
    table, info = run(root, "big.csv")
    assert table.num_rows == 20_002
    assert table.schema.field("n").type == pa.float64()
    assert table.column("n").to_pylist()[-2:] == [2.5, 7.0]
    assert list(info["outcome"].widened) == ["n"]
    assert "'2.5'" in info["outcome"].widened["n"]
    assert any("widened to float64; reading again" in line for line in info["lines"])


def test_number_column_turning_text_widens_to_string(root: Path) -> None:
    rows = [str(i) for i in range(20_000)] + ["A17"]
    (root / "t.csv").write_text("code\n" + "\n".join(rows) + "\n")
    table, _ = run(root, "t.csv")
    assert table.schema.field("code").type == pa.string()
    assert table.column("code").to_pylist()[:2] == ["0", "1"]


def test_declared_types_are_enforced_not_widened(root: Path) -> None:
    rows = [str(i) for i in range(20_000)] + ["2.5"]
    (root / "d.csv").write_text("n\n" + "\n".join(rows) + "\n")
    error = refused(root, "d.csv", {"n": "int64"})
    assert error.code == ErrorCode.SCHEMA_MISMATCH
    assert "column 'n' is declared int64" in error.message and "'2.5'" in error.message
    assert "starting at data row" in error.message
    table, _ = run(root, "d.csv", {"n": "float64"})
    assert table.schema.field("n").type == pa.float64()


def test_gzip_csv(root: Path) -> None:
    with gzip.open(root / "z.csv.gz", "wt") as handle:
        handle.write("a,b\n1,2\n3,4\n")
    table, _ = run(root, "z.csv.gz")
    assert table.to_pydict() == {"a": [1, 3], "b": [2, 4]}


def test_parquet_with_a_declared_cast(root: Path) -> None:
    pq.write_table(pa.table({"id": ["a", "b"], "n": [1, 2]}), root / "p.parquet")
    table, info = run(root, "p.parquet", {"n": "float64"})
    assert table.schema.field("n").type == pa.float64()
    assert info["outcome"].rows == 2


@pytest.mark.parametrize(
    ("name", "content", "code", "fragment"),
    [
        ("empty.csv", b"", ErrorCode.EMPTY_FILE, "is empty"),
        ("header.csv", b"a,b\n", ErrorCode.NO_ROWS, "header but no rows"),
        (
            "ragged.csv",
            b"a,b\n1,2\n3,4,5\n",
            ErrorCode.PARSE_ERROR,
            "has 3 fields where the header has 2",
        ),
        (
            "latin.csv",
            "a,b\n1,caf\xe9\n".encode("latin-1"),
            ErrorCode.ENCODING_ERROR,
            "not valid UTF-8",
        ),
        (
            "latin_header.csv",
            "caf\xe9,b\n1,2\n".encode("latin-1"),
            ErrorCode.ENCODING_ERROR,
            "header",
        ),
        ("dup.csv", b"a,b,a\n1,2,3\n", ErrorCode.DUPLICATE_COLUMNS, "['a']"),
        (
            "wide.csv",
            (",".join(f"c{i}" for i in range(11)) + "\n" + ",".join("1" * 11) + "\n").encode(),
            ErrorCode.TOO_MANY_COLUMNS,
            "11 columns",
        ),
        (
            "bad.parquet",
            b"PAR1 this is not parquet",
            ErrorCode.UNREADABLE_FILE,
            "not a readable Parquet",
        ),
        ("notes.txt", b"a\n1\n", ErrorCode.UNSUPPORTED_FORMAT, "cannot tell the format"),
    ],
)
def test_bad_files_are_refused(
    root: Path, name: str, content: bytes, code: str, fragment: str
) -> None:
    (root / name).write_bytes(content)
    error = refused(root, name)
    assert error.code == code
    assert fragment in error.message


def test_truncated_parquet(root: Path) -> None:
    pq.write_table(pa.table({"n": list(range(1000))}), root / "whole.parquet")
    data = (root / "whole.parquet").read_bytes()
    (root / "cut.parquet").write_bytes(data[: len(data) // 2])
    assert refused(root, "cut.parquet").code == ErrorCode.UNREADABLE_FILE


def test_row_limit(root: Path) -> None:
    (root / "r.csv").write_text("a\n" + "\n".join("1" * 5) + "\n")
    limits = Limits(max_columns=10, max_rows=3, block_bytes=64 * 1024)
    assert refused(root, "r.csv", limits=limits).code == ErrorCode.TOO_MANY_ROWS


def test_unknown_declared_column(root: Path) -> None:
    (root / "u.csv").write_text("a\n1\n")
    error = refused(root, "u.csv", {"b": "int64"})
    assert error.code == ErrorCode.INVALID_PARAMS and "['b']" in error.message


def test_paths_are_confined_to_the_roots(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    (root / "link.csv").symlink_to(secret)
    (root / "ok.csv").write_text("a\n1\n")
    roots = [str(root)]
    for uri in ("../secret.csv", str(secret), "link.csv", f"file://{secret}"):
        with pytest.raises(JobError) as caught:
            resolve_source(uri, roots)
        assert caught.value.code == ErrorCode.PATH_OUTSIDE_ROOT, uri
    with pytest.raises(JobError) as caught:
        resolve_source("missing.csv", roots)
    assert caught.value.code == ErrorCode.DATASET_NOT_FOUND
    assert resolve_source("ok.csv", roots).path == str((root / "ok.csv").resolve())
    assert resolve_source(str(root / "ok.csv"), roots).format == "csv"
    with pytest.raises(JobError) as caught:
        resolve_source("ok.csv", roots, max_bytes=2)
    assert caught.value.code == ErrorCode.FILE_TOO_LARGE


def test_url_sources_must_be_under_a_url_root() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/in/a.csv", b"a\n1\n")
    fs.pipe("/bucket/private/b.csv", b"a\n1\n")
    roots = ["memory://bucket/in/"]
    assert resolve_source("memory://bucket/in/a.csv", roots).size == 4
    for uri in ("memory://bucket/private/b.csv", "memory://bucket/in/../private/b.csv"):
        with pytest.raises(JobError) as caught:
            resolve_source(uri, roots)
        assert caught.value.code == ErrorCode.PATH_OUTSIDE_ROOT


def test_hash_is_of_the_source_bytes(root: Path) -> None:
    import hashlib

    data = b"a,b\n1,2\n" * 1000
    (root / "h.csv").write_bytes(data)
    source = resolve_source("h.csv", [str(root)])
    assert hash_source(source, lambda *a: None) == hashlib.sha256(data).hexdigest()


def test_human_counts() -> None:
    assert [human(n) for n in (999, 1_200, 1_200_000, 3_400_000_000)] == [
        "999",
        "1.2k",
        "1.2M",
        "3.4G",
    ]


def test_no_file_descriptor_leaks(root: Path) -> None:
    (root / "x.csv").write_text("a\n1\n")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        run(root, "x.csv")
    assert len(os.listdir("/proc/self/fd")) <= before + 1


def test_columns_empty_in_the_first_block(root: Path) -> None:
    (root / "e.csv").write_text("a,b\n1,\n2,\n")
    table, _ = run(root, "e.csv")
    assert table.schema.field("b").type == pa.string()
    assert table.column("b").to_pylist() == [None, None]
    rows = [f"{i}," for i in range(20_000)] + ["1,7", "2,2.5", "3,x"]
    (root / "late.csv").write_text("a,b\n" + "\n".join(rows) + "\n")
    table, info = run(root, "late.csv")
    assert table.schema.field("b").type == pa.string()  # null -> int64 -> float64 -> string
    assert table.column("b").to_pylist()[-3:] == ["7", "2.5", "x"]
    assert info["outcome"].widened["b"].startswith("string")

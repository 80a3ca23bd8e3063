"""Inline scoring rows validated against a version's input schema, row by row."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workers.deployment.rows import RowError, input_columns, validate_rows

DATA = Path(__file__).resolve().parents[2] / "data"

SCHEMA = [
    {"name": "plan", "dtype": "str"},
    {"name": "age", "dtype": "int64"},
    {"name": "spend", "dtype": "float64"},
    {"name": "active", "dtype": "bool"},
    {"name": "region", "dtype": "category"},
    {"name": "note", "dtype": "object"},
]


def good(**change: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "customer_id": "c1",
        "plan": "pro",
        "age": 41,
        "spend": 12.5,
        "active": True,
        "region": "eu",
        "note": "x",
    }
    row.update(change)
    return {k: v for k, v in row.items() if v is not DROP}


DROP: Any = object()


def errors_of(row: Any, **kwargs: Any) -> list[tuple[str, str | None]]:
    result = validate_rows([row], SCHEMA, **kwargs)
    assert (len(result.positions) == 0) == bool(result.errors)
    return [(e.code, e.column) for e in result.errors]


def test_valid_rows_give_the_schema_frame_in_order_with_its_dtypes() -> None:
    rows = [
        good(customer_id="a", extra=1, note=None),
        good(customer_id=7, spend=3, age=2.0, region=5, plan="basic", zzz=None),
    ]
    result = validate_rows(rows, SCHEMA)
    assert result.errors == []
    assert result.positions == [0, 1]
    assert result.keys == ["a", "7"]
    assert result.ignored_columns == ["extra", "zzz"]
    frame = result.frame
    assert list(frame.columns) == ["plan", "age", "spend", "active", "region", "note"]
    assert [str(t) for t in frame.dtypes] == [
        "str",
        "int64",
        "float64",
        "bool",
        "category",
        "object",
    ]
    assert frame["plan"].tolist() == ["pro", "basic"]
    assert frame["age"].tolist() == [41, 2]
    assert frame["spend"].tolist() == [12.5, 3.0]
    assert frame["region"].tolist() == ["eu", "5"]  # an integer category code becomes its str()
    assert frame["note"].tolist() == [None, "x"]
    assert list(frame.index) == [0, 1]


def test_a_row_that_is_not_an_object_gets_one_error() -> None:
    rows: list[Any] = [good(), ["pro", 41], "text", None]  # JSON arrives untyped
    result = validate_rows(rows, SCHEMA)
    assert result.positions == [0]
    assert [(e.row, e.code, e.column) for e in result.errors] == [
        (1, "column_type_mismatch", None),
        (2, "column_type_mismatch", None),
        (3, "column_type_mismatch", None),
    ]
    assert "row 1 is an array, not a JSON object" in result.errors[0].message


def test_missing_columns_each_get_an_error() -> None:
    assert errors_of(good(age=DROP, region=DROP)) == [
        ("column_missing", "age"),
        ("column_missing", "region"),
    ]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (41, None),
        (2.0, None),
        (2.5, "column_type_mismatch"),
        ("41", "column_type_mismatch"),
        (True, "column_type_mismatch"),
        (None, "value_missing"),
        (float("nan"), "value_missing"),
        (float("inf"), "value_not_finite"),
        (float("-inf"), "value_not_finite"),
        (2**63, "column_type_mismatch"),
        ([1], "column_type_mismatch"),
    ],
)
def test_int_column(value: Any, code: str | None) -> None:
    assert errors_of(good(age=value)) == ([] if code is None else [(code, "age")])


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (12.5, None),
        (3, None),
        (None, None),  # float columns are nullable by default
        (float("nan"), None),
        (float("inf"), "value_not_finite"),
        (float("-inf"), "value_not_finite"),
        ("1.5", "column_type_mismatch"),
        (False, "column_type_mismatch"),
        ({"v": 1}, "column_type_mismatch"),
    ],
)
def test_float_column(value: Any, code: str | None) -> None:
    assert errors_of(good(spend=value)) == ([] if code is None else [(code, "spend")])


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (True, None),
        (False, None),
        (1, "column_type_mismatch"),
        ("true", "column_type_mismatch"),
        (None, "value_missing"),
    ],
)
def test_bool_column(value: Any, code: str | None) -> None:
    assert errors_of(good(active=value)) == ([] if code is None else [(code, "active")])


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("basic", None),
        (3, None),
        (None, None),  # text columns are nullable by default
        (2.5, "column_type_mismatch"),
        (3.0, "column_type_mismatch"),
        (True, "column_type_mismatch"),
        (["a"], "column_type_mismatch"),
    ],
)
def test_text_columns(value: Any, code: str | None) -> None:
    for column in ("plan", "region", "note"):
        assert errors_of(good(**{column: value})) == ([] if code is None else [(code, column)])


def test_nullable_overrides_the_defaults() -> None:
    def only_age(name: str) -> bool:
        return name == "age"

    assert errors_of(good(age=None, spend=None, plan=None), nullable=only_age) == [
        ("value_missing", "plan"),
        ("value_missing", "spend"),
    ]
    result = validate_rows([good(age=None), good(age=3)], SCHEMA, nullable=lambda _: True)
    # int64 cannot hold the null the caller allowed: float64, as pandas itself would do.
    assert str(result.frame["age"].dtype) == "float64"
    assert np.isnan(result.frame["age"][0]) and result.frame["age"][1] == 3.0


def test_routing_key_is_required_and_becomes_a_string() -> None:
    assert errors_of(good(customer_id=DROP)) == [("routing_key_missing", "customer_id")]
    assert errors_of(good(customer_id=None)) == [("routing_key_missing", "customer_id")]
    assert errors_of(good(customer_id=1.5)) == [("column_type_mismatch", "customer_id")]
    assert errors_of(good(customer_id=True)) == [("column_type_mismatch", "customer_id")]
    result = validate_rows([good(id="k9")], SCHEMA, key_column="id")
    assert result.keys == ["k9"] and result.ignored_columns == ["customer_id"]


def test_a_key_column_that_is_also_an_input_reports_one_error() -> None:
    schema = [*SCHEMA, {"name": "customer_id", "dtype": "str"}]
    result = validate_rows([good(customer_id=DROP)], schema)
    assert [(e.code, e.column) for e in result.errors] == [("column_missing", "customer_id")]
    assert "customer_id" in list(validate_rows([good()], schema).frame.columns)


def test_every_error_of_a_row_is_reported_in_row_then_schema_order() -> None:
    rows: list[Any] = [
        good(),
        good(age="x", spend=float("inf"), customer_id=None, plan=DROP),
        good(),
        7,
        good(active=None),
    ]
    result = validate_rows(rows, SCHEMA)
    assert result.positions == [0, 2]
    assert result.keys == ["c1", "c1"]
    assert [(e.row, e.code, e.column) for e in result.errors] == [
        (1, "column_missing", "plan"),
        (1, "column_type_mismatch", "age"),
        (1, "value_not_finite", "spend"),
        (1, "routing_key_missing", "customer_id"),
        (3, "column_type_mismatch", None),
        (4, "value_missing", "active"),
    ]
    assert result.errors[1] == RowError(
        1,
        "column_type_mismatch",
        "age",
        "column 'age' (int64) needs a whole JSON number, got string 'x'",
    )
    assert len(result.frame) == 2
    assert [str(t) for t in result.frame.dtypes] == [
        "str",
        "int64",
        "float64",
        "bool",
        "category",
        "object",
    ]


def test_no_valid_rows_still_gives_the_schema_columns() -> None:
    result = validate_rows([good(age="x")], SCHEMA)
    assert result.frame.shape == (0, 6)
    assert list(result.frame.columns) == [c["name"] for c in SCHEMA]
    assert str(result.frame["age"].dtype) == "int64"
    empty = validate_rows([], SCHEMA)
    assert empty.frame.shape == (0, 6) and empty.errors == [] and empty.ignored_columns == []


def test_nullable_extension_dtypes_hold_nulls() -> None:
    schema = [{"name": "n", "dtype": "Int64"}, {"name": "b", "dtype": "boolean"}]
    rows: list[dict[str, Any]] = [
        {"customer_id": "a", "n": 1, "b": True},
        {"customer_id": "b", "n": None, "b": None},
    ]
    result = validate_rows(rows, schema, nullable=lambda _: True)
    assert [str(t) for t in result.frame.dtypes] == ["Int64", "boolean"]
    assert result.frame["n"].isna().tolist() == [False, True]


def test_an_unsupported_schema_dtype_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="'when' has dtype 'datetime64"):
        validate_rows([], [{"name": "when", "dtype": "datetime64[us]"}])


def test_1000_rows_by_100_columns_validate_quickly() -> None:
    dtypes = ["float64", "int64", "str", "bool"]
    schema = [{"name": f"c{i}", "dtype": dtypes[i % 4]} for i in range(100)]
    sample = {"float64": 0.5, "int64": 3, "str": "a", "bool": True}
    row = {"customer_id": "k", **{c["name"]: sample[c["dtype"]] for c in schema}}
    rows = [dict(row, customer_id=f"k{i}") for i in range(1000)]
    rows[10]["c1"] = 2.5
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = validate_rows(rows, schema)
        best = min(best, time.perf_counter() - start)
    assert result.frame.shape == (999, 100) and len(result.errors) == 1
    # A few ms on a normal machine; generous for shared CI runners.
    assert best < 0.5


def test_real_bank_marketing_rows() -> None:
    table = pd.read_parquet(DATA / "bank_marketing_dated.parquet").head(5)
    # Inputs as training records them (timestamps are dropped from inputs at training).
    inputs = table.drop(columns=["date", "y", "y01"])
    schema = [{"name": str(c), "dtype": str(t)} for c, t in inputs.dtypes.items()]
    records = json.loads(json.dumps(inputs.to_dict("records")))
    for i, record in enumerate(records):
        record["customer_id"] = f"cust-{i}"
    result = validate_rows(records, schema)
    assert result.errors == [] and result.positions == [0, 1, 2, 3, 4]
    assert result.ignored_columns == []
    pd.testing.assert_frame_equal(result.frame, inputs.reset_index(drop=True))

    records[1]["age"] = "58"
    del records[3]["job"]
    records[3]["balance"] = 1.5
    broken = validate_rows(records, schema)
    assert broken.positions == [0, 2, 4]
    assert [(e.row, e.code, e.column) for e in broken.errors] == [
        (1, "column_type_mismatch", "age"),
        (3, "column_missing", "job"),
        (3, "column_type_mismatch", "balance"),
    ]
    expected = inputs.iloc[[0, 2, 4]].reset_index(drop=True)
    pd.testing.assert_frame_equal(broken.frame, expected)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"spend": 3},
        {"spend": float("nan")},
        {"spend": float("inf")},
        {"spend": 10**400},
        {"spend": 2**63},
        {"spend": True},
        {"age": 2**63},
        {"age": 2.0},
        {"age": 2.5},
        {"age": False},
        {"active": 1},
        {"plan": 3},
        {"plan": None},
        {"region": 1.5},
    ],
)
def test_a_few_rows_are_checked_like_many(change: dict[str, Any]) -> None:
    """Up to 16 rows a column is checked cell by cell instead of with numpy: same answer."""
    few = validate_rows([good(**change)] * 2, SCHEMA)
    many = validate_rows([good(**change)] * 40, SCHEMA)
    assert few.errors == [e for e in many.errors if e.row < 2]
    assert few.positions == [p for p in many.positions if p < 2]
    pd.testing.assert_frame_equal(few.frame, many.frame.head(len(few.frame)))


def test_a_prepared_schema_checks_rows_as_the_schema_does() -> None:
    nullable = {"age": True}.get
    prepared = input_columns(SCHEMA, lambda name: bool(nullable(name)))
    rows = [good(age=None), good(spend=None), good(customer_id=None)]
    direct = validate_rows(rows, SCHEMA, nullable=lambda name: bool(nullable(name)))
    again = validate_rows(rows, [], prepared=prepared)
    assert again.errors == direct.errors
    pd.testing.assert_frame_equal(again.frame, direct.frame)
    with pytest.raises(ValueError, match="cannot build"):
        input_columns([{"name": "when", "dtype": "datetime64[ns]"}])

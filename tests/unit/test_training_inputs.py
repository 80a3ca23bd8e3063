"""prepare_binary on small hand-built tables: every refusal, the positive class, the split."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from workers.training.inputs import TIMESTAMP_REASON, TrainingInputError, prepare_binary


def prepare(frame: pd.DataFrame, **kw: Any) -> Any:
    options: dict[str, Any] = {
        "target": "churn",
        "exclude": [],
        "features": None,
        "holdout": 0.2,
        "folds": 3,
        "seed": 0,
    }
    return prepare_binary(frame, **{**options, **kw})


def table(churn: list[Any], **columns: Any) -> pd.DataFrame:
    """``churn`` plus an informative-free numeric column ``x`` unless columns are given."""
    n = len(churn)
    return pd.DataFrame({"x": np.arange(n, dtype="float64"), **columns, "churn": churn})


def refusal(frame: pd.DataFrame, **kw: Any) -> TrainingInputError:
    with pytest.raises(TrainingInputError) as caught:
        prepare(frame, **kw)
    return caught.value


# 12 "no" and 8 "yes": enough for 3 folds + a 20 % holdout (8 · 0.8 = 6.4 ≥ 4, 8 · 0.2 ≥ 1).
YES_NO = ["no"] * 12 + ["yes"] * 8


# ------------------------------------------------------------------ refusals


def test_missing_target_lists_available_columns() -> None:
    error = refusal(table(YES_NO), target="label")
    assert error.code == "column_missing"
    assert "'label'" in str(error) and "'churn'" in str(error) and "'x'" in str(error)


def test_missing_target_values_are_counted() -> None:
    error = refusal(table([*YES_NO[:-2], None, None]))
    assert error.code == "target_missing_values"
    assert "2 of 20 rows" in str(error)


def test_single_class_target() -> None:
    error = refusal(table(["yes"] * 20))
    assert error.code == "target_single_class"
    assert "'yes'" in str(error) and "20 rows" in str(error)


def test_multiclass_target_points_to_journey_prediction() -> None:
    error = refusal(table(["a", "b", "c"] * 7))
    assert error.code == "target_not_binary"
    assert "3 distinct values" in str(error) and "journey_prediction" in str(error)


def test_unknown_positive_class() -> None:
    error = refusal(table(YES_NO), positive_class="maybe")
    assert error.code == "invalid_params"
    assert "'maybe'" in str(error) and "'no'" in str(error) and "'yes'" in str(error)


def test_unknown_feature_columns() -> None:
    error = refusal(table(YES_NO), features=["x", "age"])
    assert error.code == "column_missing"
    assert "'age'" in str(error)


def test_target_listed_as_feature() -> None:
    assert refusal(table(YES_NO), features=["x", "churn"]).code == "invalid_params"


def test_no_features_names_what_was_excluded_and_dropped() -> None:
    frame = table(YES_NO, when=pd.date_range("2024-01-01", periods=20), same=[1] * 20)
    frame["id"] = range(20)
    error = refusal(frame, exclude=["id", "x"])
    assert error.code == "no_features"
    message = str(error)
    assert "'id'" in message and "'x'" in message
    assert "'when'" in message and "timestamp" in message and "'same'" in message


def test_too_few_rows_names_the_short_class() -> None:
    # 3 folds + holdout 0.2 need ceil(4 / 0.8) = 5 rows per class; "yes" has 4.
    error = refusal(table(["no"] * 16 + ["yes"] * 4))
    assert error.code == "too_few_rows"
    assert "class 'yes' has 4 rows" in str(error) and "about 5 rows per class" in str(error)
    # a tiny holdout share leaves no holdout row: 1 / 0.05 = 20 rows needed.
    error = refusal(table(YES_NO), holdout=0.05)
    assert error.code == "too_few_rows" and "about 20 rows" in str(error)


@pytest.mark.parametrize(("holdout", "folds"), [(0.0, 3), (1.0, 3), (0.2, 1)])
def test_invalid_split_settings(holdout: float, folds: int) -> None:
    assert refusal(table(YES_NO), holdout=holdout, folds=folds).code == "invalid_params"


# ------------------------------------------------------------------ positive class


def test_positive_class_defaults_to_true_for_booleans() -> None:
    data = prepare(table([True] * 12 + [False] * 8))
    assert data.positive_class == "True" and data.classes == ["False", "True"]
    assert data.y_train.sum() + data.y_holdout.sum() == 12


def test_positive_class_defaults_to_one_for_zero_one_numbers() -> None:
    data = prepare(table([1] * 12 + [0] * 8))  # 1 is the more frequent, still positive
    assert data.positive_class == "1" and data.classes == ["0", "1"]
    assert data.y_train.sum() + data.y_holdout.sum() == 12


def test_positive_class_defaults_to_the_rarer_value() -> None:
    data = prepare(table(YES_NO))
    assert data.positive_class == "yes" and data.classes == ["no", "yes"]
    assert data.y_train.sum() + data.y_holdout.sum() == 8
    data = prepare(table(["yes"] * 12 + ["no"] * 8))
    assert data.positive_class == "no"


def test_positive_class_tie_takes_the_larger_string() -> None:
    assert prepare(table(["b"] * 10 + ["a"] * 10)).positive_class == "b"


def test_positive_class_given_as_text() -> None:
    data = prepare(table(YES_NO), positive_class="no")
    assert data.positive_class == "no" and data.classes == ["yes", "no"]
    assert data.y_train.sum() + data.y_holdout.sum() == 12
    # JSON spellings match booleans and numbers
    assert prepare(table([True] * 10 + [False] * 10), positive_class="false").classes == [
        "True",
        "False",
    ]
    assert prepare(table([1.0] * 10 + [0.0] * 10), positive_class="0").positive_class == "0.0"


# ------------------------------------------------------------------ inputs


def test_inputs_are_classified_and_dropped_with_reasons() -> None:
    n = len(YES_NO)
    frame = pd.DataFrame(
        {
            "id": range(n),
            "plan": (["basic", "pro", None, "pro"] * 5),
            "signup": pd.date_range("2024-01-01", periods=n, tz="UTC"),
            "age": np.arange(n) % 7,
            "empty": [np.nan] * n,
            "country": ["NL"] * (n - 1) + [None],
            "active": [True, False] * (n // 2),
            "churn": YES_NO,
        }
    )
    data = prepare(frame, exclude=["id", "not_a_column"])
    assert data.numeric == ["age", "active"]
    assert data.categorical == ["plan"]
    assert data.dropped == {
        "signup": TIMESTAMP_REASON,
        "empty": "entirely missing",
        "country": "constant",
    }
    assert list(data.X_train.columns) == ["plan", "age", "active"]
    assert data.input_schema == [
        {"name": "plan", "dtype": "str", "kind": "categorical", "nullable": True},
        {"name": "age", "dtype": "int64", "kind": "numeric", "nullable": False},
        {"name": "active", "dtype": "bool", "kind": "numeric", "nullable": False},
    ]


def test_features_are_kept_in_table_order_and_exclude_still_wins() -> None:
    frame = table(YES_NO, a=np.arange(20) % 3, b=np.arange(20) % 5)
    data = prepare(frame, features=["b", "x", "a"], exclude=["a"])
    assert data.numeric == ["x", "b"]


def test_mixed_text_columns_are_cast_to_str() -> None:
    mixed = pd.Series([1, "a", None, 2.5] * 5, dtype=object)
    data = prepare(table(YES_NO, mixed=mixed))
    assert data.categorical == ["mixed"]
    assert data.X_train["mixed"].dtype == "str"
    assert data.input_schema[1] == {
        "name": "mixed",
        "dtype": "object",
        "kind": "categorical",
        "nullable": True,
    }
    values = pd.concat([data.X_train["mixed"], data.X_holdout["mixed"]])
    assert sorted(values.dropna().unique()) == ["1", "2.5", "a"]
    assert values.isna().sum() == 5


# ------------------------------------------------------------------ split


def test_holdout_split_is_stratified_and_reindexed() -> None:
    frame = table(["yes"] * 30 + ["no"] * 70, plan=["a", "b"] * 50)
    data = prepare(frame, holdout=0.2, folds=5)
    # 100 rows, 20 % holdout -> 80 / 20; 30 % positives in both parts -> 24 / 6.
    assert len(data.X_train) == len(data.y_train) == 80
    assert len(data.X_holdout) == len(data.y_holdout) == 20
    assert data.y_train.sum() == 24 and data.y_holdout.sum() == 6
    assert data.y_train.dtype == np.int64 and set(np.unique(data.y_train)) == {0, 1}
    assert list(data.X_train.index) == list(range(80))
    # rows stay whole: x is the row number and row r is positive iff r < 30
    rows = pd.concat([data.X_train["x"], data.X_holdout["x"]]).astype(int)
    assert sorted(rows) == list(range(100))
    labels = np.concatenate([data.y_train, data.y_holdout])
    assert ((rows.to_numpy() < 30).astype(int) == labels).all()


def test_split_depends_on_the_seed_only() -> None:
    frame = table(["yes"] * 30 + ["no"] * 70)
    first, again = prepare(frame, seed=1), prepare(frame, seed=1)
    assert first.X_holdout["x"].tolist() == again.X_holdout["x"].tolist()
    assert first.X_holdout["x"].tolist() != prepare(frame, seed=2).X_holdout["x"].tolist()

"""The cleaning pipeline builder (column resolution, refusals) and safe skops persistence."""

from __future__ import annotations

import fractions
import json
import os
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from api_client.quality_params import CleanParams
from workers.preprocessing.cleaning import (
    CleaningConfigError,
    Passthrough,
    UnsafeArtifactError,
    build_cleaning_pipeline,
    dump_pipeline,
    fit_transform_frame,
    library_versions,
    load_pipeline,
)
from workers.preprocessing.cleaning.pipeline import CleaningPlan
from workers.preprocessing.columns import column_kinds

NAN = np.nan


def params(**fields: Any) -> CleanParams:
    return CleanParams.model_validate({"dataset_id": 1, **fields})


def plan_for(frame: pd.DataFrame, knn_max_rows: int = 1000, **fields: Any) -> CleaningPlan:
    return build_cleaning_pipeline(params(**fields), column_kinds(frame), len(frame), knn_max_rows)


def refusal(frame: pd.DataFrame, knn_max_rows: int = 1000, **fields: Any) -> CleaningConfigError:
    with pytest.raises(CleaningConfigError) as caught:
        plan_for(frame, knn_max_rows, **fields)
    return caught.value


def sample() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "amount": [10.0, NAN, 30.0, 20.0, 1000.0, 25.0],
            "visits": [1.0, 2.0, NAN, 4.0, 3.0, 2.0],
            "city": ["NY", "ny ", None, "CA", "NY", "CA"],
            "vip": pd.array([True, None, False, True, False, True], dtype="boolean"),
            "when": pd.to_datetime([*(f"2024-01-0{d}" for d in range(1, 6)), None]),
        }
    )


# ------------------------------------------------------------------ resolution


def test_defaults_resolve_by_kind_and_skip_excluded_and_timestamps() -> None:
    plan = plan_for(sample(), exclude=["id"])
    assert [step["name"] for step in plan.steps] == ["normalize_categories", "impute"]
    impute = plan.steps[1]
    # numeric -> median, text and boolean -> most_frequent; 'id' excluded, 'when' a timestamp.
    assert impute["columns"] == ["amount", "visits", "city", "vip"]
    assert {c: r["strategy"] for c, r in impute["rules"].items()} == {
        "amount": "median",
        "visits": "median",
        "city": "most_frequent",
        "vip": "most_frequent",
    }
    assert plan.steps[0]["columns"] == ["city"]
    assert plan.drop_missing_columns == []
    json.dumps(plan.steps)  # JSON-able


def test_every_step_in_order_with_overrides_and_drop_columns() -> None:
    plan = plan_for(
        sample(),
        exclude=["id"],
        normalize_categories=["city"],
        missing={
            "numeric": None,
            "categorical": None,
            "columns": {
                "amount": {"strategy": "drop"},
                "when": {"strategy": "constant", "value": "2024-01-01"},
                "visits": {"strategy": "iterative", "indicator": True},
            },
        },
        outliers={
            "cap": "quantile",
            "quantiles": [0.05, 0.95],
            "columns": ["visits"],
            "robust_scale": ["amount", "id"],
            "isolation_forest": {"contamination": 0.1, "flag_column": "odd"},
        },
        seed=7,
    )
    assert [step["name"] for step in plan.steps] == [
        "normalize_categories",
        "impute",
        "cap_outliers",
        "flag_outliers",
        "robust_scale",
    ]
    assert [name for name, _ in plan.pipeline.steps] == [s["name"] for s in plan.steps]
    assert plan.drop_missing_columns == ["amount"]
    impute, cap, flag, scale = plan.steps[1:]
    assert impute["columns"] == ["visits", "when"]
    assert impute["iterative_predictors"] == ["amount"]  # 'id' is excluded
    assert cap == {
        "name": "cap_outliers",
        "columns": ["visits"],
        "method": "quantile",
        "quantiles": [0.05, 0.95],
    }
    assert flag["columns"] == ["amount", "visits"] and flag["seed"] == 7
    assert scale["columns"] == ["amount"]  # exclude wins over robust_scale
    json.dumps(plan.steps)


def test_nothing_to_do_is_a_passthrough() -> None:
    plan = plan_for(
        sample(),
        normalize_categories=False,
        missing={"numeric": None, "categorical": None},
    )
    assert plan.steps == [{"name": "passthrough", "columns": []}]
    assert isinstance(plan.pipeline.steps[0][1], Passthrough)
    frame = sample()
    pd.testing.assert_frame_equal(fit_transform_frame(plan, frame, frame), frame)


def test_fitted_on_the_training_rows_only() -> None:
    full = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 1000.0, 2000.0, NAN]})
    train = full.iloc[:5]
    plan = plan_for(full, normalize_categories=False, outliers={"cap": "iqr"})
    out = fit_transform_frame(plan, train, full)
    # Train 1..5: median 3, Q1 = 2, Q3 = 4, fences -1 and 7. On all rows the median would
    # be 4 and Q3 = 5 + 0.5 * 995 = 502.5 (1000 would stay): the train values decide.
    assert out["x"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 7.0, 3.0]


def test_pipeline_does_not_mutate_and_keeps_column_order() -> None:
    frame = sample()
    before = frame.copy(deep=True)
    plan = plan_for(
        frame,
        exclude=["id"],
        missing={"columns": {"amount": {"strategy": "mean", "indicator": True}}},
        outliers={"cap": "iqr", "isolation_forest": {}},
    )
    out = fit_transform_frame(plan, frame, frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.columns) == [*frame.columns, "amount__was_missing", "is_outlier"]
    assert list(plan.pipeline.get_feature_names_out()) == list(out.columns)
    pd.testing.assert_series_equal(out["id"], frame["id"])
    pd.testing.assert_series_equal(out["when"], frame["when"])
    assert out["city"].tolist() == ["NY", "NY", "NY", "CA", "NY", "CA"]  # normalised, filled


# ------------------------------------------------------------------ refusals


def test_unknown_columns_are_named_with_some_available_ones() -> None:
    error = refusal(
        sample(),
        missing={"columns": {"amnt": {"strategy": "median"}}},
        outliers={"robust_scale": ["nope"]},
    )
    assert error.code == "column_missing"
    assert "'amnt'" in str(error) and "'nope'" in str(error)
    assert "'amount'" in str(error)  # a close match and among the columns listed


@pytest.mark.parametrize(
    "fields",
    [
        {"exclude": ["ghost"]},
        {"key_columns": ["ghost"]},
        {"fit_on": {"time_column": "ghost", "before": "2024-01-03T00:00:00"}},
        {"missing": {"columns": {"amount": {"strategy": "group_median", "by": "ghost"}}}},
        {"outliers": {"cap": "iqr", "columns": ["ghost"]}},
        {"outliers": {"isolation_forest": {"columns": ["ghost"]}}},
        {"normalize_categories": ["ghost"]},
    ],
)
def test_every_place_a_column_is_named_is_checked(fields: dict[str, Any]) -> None:
    error = refusal(sample(), **fields)
    assert error.code == "column_missing"
    assert "'ghost'" in str(error)


@pytest.mark.parametrize(
    "fields",
    [
        {"missing": {"columns": {"city": {"strategy": "median"}}}},
        {"missing": {"categorical": {"strategy": "mean"}}},
        {"missing": {"columns": {"when": {"strategy": "most_frequent"}}}},
        {"missing": {"columns": {"amount": {"strategy": "constant", "value": "zero"}}}},
        {"outliers": {"cap": "iqr", "columns": ["city"]}},
        {"outliers": {"robust_scale": ["vip"]}},
        {"outliers": {"isolation_forest": {"columns": ["when"]}}},
        {"normalize_categories": ["amount"]},
    ],
)
def test_type_mismatches(fields: dict[str, Any]) -> None:
    error = refusal(sample(), **fields)
    assert error.code == "column_type_mismatch"
    assert any(f"'{c}'" in str(error) for c in ("city", "when", "amount", "vip"))


def test_knn_above_the_row_limit() -> None:
    error = refusal(sample(), knn_max_rows=5, missing={"columns": {"amount": {"strategy": "knn"}}})
    assert error.code == "input_too_large"
    assert "CIPML_CLEAN_KNN_MAX_ROWS" in str(error) and "5 rows" in str(error)
    assert "'iterative'" in str(error) and "'median'" in str(error)
    plan_for(sample(), knn_max_rows=6, missing={"columns": {"amount": {"strategy": "knn"}}})


def test_all_missing_shows_at_fit() -> None:
    frame = sample().assign(empty=NAN)
    plan = plan_for(frame)  # the builder cannot know
    with pytest.raises(CleaningConfigError) as caught:
        fit_transform_frame(plan, frame, frame)
    assert caught.value.code == "column_all_missing"
    assert "'empty'" in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"outliers": {"isolation_forest": {"flag_column": "city"}}},
        {
            "missing": {"columns": {"amount": {"strategy": "median", "indicator": True}}},
            "outliers": {"isolation_forest": {"flag_column": "amount__was_missing"}},
        },
    ],
)
def test_added_columns_must_be_new(fields: dict[str, Any]) -> None:
    assert refusal(sample(), **fields).code == "column_exists"


# ------------------------------------------------------------------ persistence


def test_skops_round_trip_gives_the_same_output() -> None:
    frame = sample()
    plan = plan_for(
        frame,
        missing={
            "columns": {
                "amount": {"strategy": "knn", "indicator": True},
                "visits": {"strategy": "iterative"},
                "id": {"strategy": "group_median", "by": "city"},
            }
        },
        outliers={"cap": "iqr", "robust_scale": ["visits"], "isolation_forest": {}},
    )
    out = fit_transform_frame(plan, frame, frame)
    loaded = load_pipeline(dump_pipeline(plan.pipeline))
    assert [name for name, _ in loaded.steps] == [name for name, _ in plan.pipeline.steps]
    pd.testing.assert_frame_equal(loaded.transform(frame), out)


def test_an_empty_plan_round_trips() -> None:
    plan = plan_for(
        sample(), normalize_categories=False, missing={"numeric": None, "categorical": None}
    )
    plan.pipeline.fit(sample())
    pd.testing.assert_frame_equal(
        load_pipeline(dump_pipeline(plan.pipeline)).transform(sample()), sample()
    )


def test_load_refuses_a_function_it_does_not_trust() -> None:
    data = sio.dumps(Pipeline([("run", FunctionTransformer(func=os.system))]))
    assert any("system" in t for t in sio.get_untrusted_types(data=data))
    with pytest.raises(UnsafeArtifactError, match="system"):
        load_pipeline(data)


def test_load_refuses_an_estimator_skops_trusts_by_default() -> None:
    """skops 0.16 trusts every scikit-learn estimator: the allow-list is checked against
    every type the file names, not only those skops reports."""
    from sklearn.svm import SVC

    data = sio.dumps(Pipeline([("svc", SVC())]))
    assert not any("SVC" in t for t in sio.get_untrusted_types(data=data))
    with pytest.raises(UnsafeArtifactError, match=r"sklearn\.svm\._classes\.SVC"):
        load_pipeline(data)


def test_load_refuses_a_foreign_type_inside_our_transformer() -> None:
    pipeline = Pipeline([("p", Passthrough())]).fit(sample())
    pipeline.steps[0][1].note_ = fractions.Fraction(1, 3)
    with pytest.raises(UnsafeArtifactError, match=r"fractions\.Fraction") as caught:
        load_pipeline(dump_pipeline(pipeline))
    assert caught.value.types == ["fractions.Fraction"]


def test_library_versions() -> None:
    versions = library_versions()
    assert set(versions) == {"scikit-learn", "numpy", "pandas", "scipy", "skops"}
    assert versions["pandas"] == pd.__version__

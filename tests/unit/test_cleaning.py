"""Cleaning transformers on small hand-built frames, with the expected numbers worked out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from workers.preprocessing.cleaning import (
    CategoryNormalizer,
    CleaningConfigError,
    ColumnRule,
    IsolationForestFlagger,
    MissingValueImputer,
    OutlierCapper,
    RobustScaling,
)

NAN = np.nan


def impute(frame: pd.DataFrame, rules: dict[str, ColumnRule], **kw: Any) -> pd.DataFrame:
    out: pd.DataFrame = MissingValueImputer(rules, **kw).fit(frame).transform(frame)
    return out


# ------------------------------------------------------------------ categories


def test_category_normalizer_maps_spellings_to_the_most_frequent() -> None:
    train = pd.DataFrame({"city": ["NY", "NY", "ny ", " Ny", "CA", None], "n": range(6)})
    normalizer = CategoryNormalizer(["city"]).fit(train)
    # key 'ny': 'NY' x2, 'ny ' x1, ' Ny' x1 -> 'NY'; key 'ca': 'CA'.
    assert normalizer.transform(train)["city"].tolist() == ["NY", "NY", "NY", "NY", "CA", NAN]
    new = pd.DataFrame({"city": ["  san   JOSE", "ca", " tx ", None], "n": range(4)})
    out = normalizer.transform(pd.concat([train, new], ignore_index=True))
    # 'ca' has a known key -> 'CA'; unseen keys are only trimmed (inner spaces kept).
    assert out["city"].tolist()[6:] == ["san   JOSE", "CA", "tx", NAN]
    assert out["city"].dtype == train["city"].dtype
    assert out["n"].tolist() == [*range(6), *range(4)]


def test_category_normalizer_ties_take_the_smallest_spelling() -> None:
    frame = pd.DataFrame({"c": ["b", "B", " b", "B ", "b"]})
    # key 'b': 'b' x2, 'B' x1, ' b' x1, 'B ' x1 -> 'b'. Then a 1-1 tie: 'B' < 'b'.
    assert CategoryNormalizer(["c"]).fit_transform(frame)["c"].tolist() == ["b"] * 5
    tie = pd.DataFrame({"c": ["b", "B"]})
    assert CategoryNormalizer(["c"]).fit_transform(tie)["c"].tolist() == ["B", "B"]


# ------------------------------------------------------------------ imputation

X_TRAIN = [1.0, 1.0, NAN, 10.0]


@pytest.mark.parametrize(
    ("rule", "fill"),
    [
        ({"strategy": "constant", "value": -1.0}, -1.0),
        ({"strategy": "mean"}, 4.0),  # (1 + 1 + 10) / 3
        ({"strategy": "median"}, 1.0),  # middle of 1, 1, 10
        ({"strategy": "most_frequent"}, 1.0),  # 1 twice
    ],
)
def test_simple_strategies_on_numbers(rule: ColumnRule, fill: float) -> None:
    frame = pd.DataFrame({"x": X_TRAIN, "other": ["a", None, "c", "d"]})
    out = impute(frame, {"x": rule})
    assert out["x"].tolist() == [1.0, 1.0, fill, 10.0]
    assert out["other"].tolist() == ["a", NAN, "c", "d"]  # not configured: untouched


@pytest.mark.parametrize(
    ("rule", "fill"),
    [
        ({"strategy": "most_frequent"}, "b"),  # 'b' twice, 'a' once
        ({"strategy": "constant", "value": "unknown"}, "unknown"),
    ],
)
def test_text_strategies(rule: ColumnRule, fill: str) -> None:
    frame = pd.DataFrame({"t": ["b", None, "a", "b"]})
    out = impute(frame, {"t": rule})
    assert out["t"].tolist() == ["b", fill, "a", "b"]
    assert out["t"].dtype == frame["t"].dtype


def test_most_frequent_tie_takes_the_smallest_value() -> None:
    frame = pd.DataFrame({"t": ["b", "a", None], "x": [3.0, 2.0, NAN]})
    out = impute(frame, {"t": {"strategy": "most_frequent"}, "x": {"strategy": "most_frequent"}})
    assert out["t"].tolist() == ["b", "a", "a"]
    assert out["x"].tolist() == [3.0, 2.0, 2.0]


def test_knn_fills_with_the_neighbours_mean() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 2.1], "b": [10.0, 20.0, 30.0, NAN]})
    out = impute(frame, {"a": {"strategy": "knn"}, "b": {"strategy": "knn"}}, knn_neighbors=2)
    # Row 4 has only a=2.1: distances |2.1-1|=1.1, |2.1-2|=0.1, |2.1-3|=0.9 (each scaled by
    # the same sqrt(2/1)), so the 2 nearest are rows 2 and 3: b = (20 + 30) / 2 = 25.
    assert out["b"].tolist() == [10.0, 20.0, 30.0, 25.0]
    assert out["a"].tolist() == frame["a"].tolist()


def test_knn_fits_on_a_seeded_sample() -> None:
    frame = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) * 3})
    frame.loc[[5, 40], "b"] = NAN
    imputer = MissingValueImputer(
        {"a": {"strategy": "knn"}, "b": {"strategy": "knn"}}, knn_fit_max_rows=10, seed=3
    ).fit(frame)
    again = MissingValueImputer(imputer.rules, knn_fit_max_rows=10, seed=3).fit(frame)
    assert imputer.knn_ is not None and again.knn_ is not None
    assert imputer.knn_._fit_X.shape == (10, 2)  # rows drawn from the 50
    np.testing.assert_array_equal(imputer.knn_._fit_X, again.knn_._fit_X)  # same seed, same rows


def test_iterative_recovers_a_linear_relation() -> None:
    x = np.arange(1.0, 11.0)
    y = 2 * x
    y[[3, 6]] = NAN  # x = 4 and 7: expect y close to 8 and 14
    frame = pd.DataFrame({"x": x, "y": y})
    out = impute(frame, {"y": {"strategy": "iterative"}}, iterative_predictors=["x"])
    assert out["y"].iloc[[3, 6]].tolist() == pytest.approx([8.0, 14.0], abs=0.05)
    assert out["x"].tolist() == x.tolist()


def test_group_median_with_fallback_for_unseen_and_missing_groups() -> None:
    kind = ["purchase", "purchase", "purchase", "visit", "visit", "purchase", "visit"]
    frame = pd.DataFrame(
        {
            "kind": [*kind, "refund", None],
            "amount": [10.0, 20.0, 60.0, 1.0, 3.0, NAN, NAN, NAN, NAN],
        }
    )
    train = frame.iloc[:7]
    imputer = MissingValueImputer({"amount": {"strategy": "group_median", "by": "kind"}})
    out = imputer.fit(train).transform(frame)
    # purchase: median(10, 20, 60) = 20; visit: (1 + 3) / 2 = 2;
    # 'refund' (unseen) and None: overall median of 1, 3, 10, 20, 60 = 10.
    assert out["amount"].tolist()[5:] == [20.0, 2.0, 10.0, 10.0]
    assert out["kind"].tolist() == frame["kind"].tolist()


def test_indicator_is_computed_before_filling_and_appended() -> None:
    frame = pd.DataFrame({"x": [1.0, NAN, 3.0], "y": ["a", "b", None]})
    out = impute(frame, {"x": {"strategy": "median", "indicator": True}})
    assert list(out.columns) == ["x", "y", "x__was_missing"]
    assert out["x__was_missing"].tolist() == [0, 1, 0]
    assert out["x__was_missing"].dtype == np.int8
    assert out["x"].tolist() == [1.0, 2.0, 3.0]  # median(1, 3) = 2


def test_constant_on_boolean_and_timestamp_columns() -> None:
    frame = pd.DataFrame(
        {
            "b": pd.array([True, None], dtype="boolean"),
            "ts": pd.to_datetime(["2024-01-02", None]),
        }
    )
    out = impute(
        frame,
        {
            "b": {"strategy": "constant", "value": 0},
            "ts": {"strategy": "constant", "value": "2024-01-01"},
        },
    )
    assert out["b"].tolist() == [True, False]
    assert out["ts"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-01")]


@pytest.mark.parametrize(
    "rule",
    [
        {"strategy": "mean"},
        {"strategy": "median"},
        {"strategy": "most_frequent"},
        {"strategy": "knn"},
        {"strategy": "iterative"},
        {"strategy": "group_median", "by": "g"},
    ],
)
def test_all_missing_column_is_refused(rule: ColumnRule) -> None:
    frame = pd.DataFrame({"x": [NAN, NAN], "g": ["a", "b"]})
    with pytest.raises(CleaningConfigError, match=r"'x'.*constant") as caught:
        MissingValueImputer({"x": rule}).fit(frame)
    assert caught.value.code == "column_all_missing"


def test_constant_on_an_all_missing_column_is_fine() -> None:
    frame = pd.DataFrame({"x": [NAN, NAN]})
    assert impute(frame, {"x": {"strategy": "constant", "value": 0.0}})["x"].tolist() == [0, 0]


@pytest.mark.parametrize("strategy", ["mean", "median", "knn", "iterative"])
def test_numeric_strategy_on_text_is_refused(strategy: str) -> None:
    frame = pd.DataFrame({"t": ["a", None]})
    with pytest.raises(CleaningConfigError, match=r"'t' is categorical") as caught:
        MissingValueImputer({"t": {"strategy": strategy}}).fit(frame)
    assert caught.value.code == "column_type_mismatch"


# ------------------------------------------------------------------ outliers


def test_iqr_capping_with_hand_computed_fences() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0], "k": list("abcde")})
    capper = OutlierCapper(["x"], method="iqr", iqr_k=1.5).fit(train)
    # Linear quantiles of 1..4,100: Q1 = 2 (position 1), Q3 = 4 (position 3), IQR = 2,
    # fences 2 - 3 = -1 and 4 + 3 = 7.
    assert (capper.lower_["x"], capper.upper_["x"]) == (-1.0, 7.0)
    new = pd.DataFrame({"x": [100.0, -5.0, NAN, 3.5, 7.0], "k": list("vwxyz")})
    out = capper.transform(new)
    assert out["x"].tolist()[:2] == [7.0, -1.0]
    assert np.isnan(out["x"].iloc[2])
    assert out["x"].tolist()[3:] == [3.5, 7.0]
    assert out["k"].tolist() == list("vwxyz")


def test_quantile_capping() -> None:
    frame = pd.DataFrame({"x": [0.0, 10.0, 20.0, 30.0, 40.0]})
    out = OutlierCapper(["x"], method="quantile", quantiles=(0.1, 0.9)).fit_transform(frame)
    # Position 0.1 * 4 = 0.4 -> 0 + 0.4 * 10 = 4; position 3.6 -> 30 + 0.6 * 10 = 36.
    assert out["x"].tolist() == pytest.approx([4.0, 10.0, 20.0, 30.0, 36.0])


def test_robust_scaling() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0], "flat": [5.0] * 5})
    out = RobustScaling(["x", "flat"]).fit_transform(frame)
    # x: median 3, IQR 4 - 2 = 2 -> (x - 3) / 2. flat: IQR 0 -> divide by 1: x - 5.
    assert out["x"].tolist() == [-1.0, -0.5, 0.0, 0.5, 48.5]
    assert out["flat"].tolist() == [0.0] * 5


def test_isolation_forest_flags_an_obvious_outlier_and_keeps_every_row() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 40)
    b = rng.normal(0, 1, 40)
    a[7], b[7] = 50.0, -50.0  # far from the cloud
    b[3] = NAN  # filled with the training median for the forest only
    frame = pd.DataFrame({"a": a, "b": b, "id": range(40)})
    flagger = IsolationForestFlagger(["a", "b"], contamination=0.05, flag_column="odd", seed=1)
    out = flagger.fit(frame).transform(frame)
    assert len(out) == 40
    assert list(out.columns) == ["a", "b", "id", "odd"]
    assert out["odd"].dtype == np.int8
    assert out["odd"].iloc[7] == 1
    assert out["odd"].sum() <= 2  # 5% of 40
    assert np.isnan(out["b"].iloc[3])  # the data itself is not filled
    assert list(flagger.get_feature_names_out()) == ["a", "b", "id", "odd"]


def test_isolation_forest_refuses_an_existing_flag_column() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "is_outlier": [0, 0]})
    with pytest.raises(CleaningConfigError) as caught:
        IsolationForestFlagger(["a"]).fit(frame)
    assert caught.value.code == "column_exists"


@pytest.mark.parametrize(
    "make",
    [
        lambda: OutlierCapper(["t"]),
        lambda: RobustScaling(["t"]),
        lambda: IsolationForestFlagger(["t"]),
    ],
)
def test_numeric_steps_refuse_text(make: Any) -> None:
    with pytest.raises(CleaningConfigError) as caught:
        make().fit(pd.DataFrame({"t": ["a", "b"]}))
    assert caught.value.code == "column_type_mismatch"


# ------------------------------------------------------------------ all transformers

TRANSFORMERS = [
    CategoryNormalizer(["t"]),
    MissingValueImputer(
        {"x": {"strategy": "median", "indicator": True}, "t": {"strategy": "most_frequent"}}
    ),
    OutlierCapper(["x"]),
    RobustScaling(["x"]),
    IsolationForestFlagger(["x"]),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=lambda t: type(t).__name__)
def test_input_not_mutated_and_other_columns_pass_through(transformer: Any) -> None:
    frame = pd.DataFrame(
        {
            "id": [3, 1, 2, 4],
            "x": [1.0, NAN, 3.0, 40.0],
            "t": [" a", "A", None, "b"],
            "when": pd.to_datetime(["2024-01-01", None, "2024-01-03", "2024-01-04"]),
        }
    )
    before = frame.copy(deep=True)
    out = transformer.fit(frame).transform(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert out is not frame
    assert list(out.columns)[:4] == ["id", "x", "t", "when"]
    configured = set(getattr(transformer, "columns", None) or transformer.rules)
    for column in ["id", "x", "t", "when"]:
        if column not in configured:
            pd.testing.assert_series_equal(out[column], frame[column])
    assert list(transformer.get_feature_names_out()) == list(out.columns)


def test_transform_refuses_other_columns_than_at_fit() -> None:
    capper = OutlierCapper(["x"]).fit(pd.DataFrame({"x": [1.0, 2.0], "y": [1, 2]}))
    with pytest.raises(ValueError, match="fitted on columns"):
        capper.transform(pd.DataFrame({"y": [1, 2], "x": [1.0, 2.0]}))

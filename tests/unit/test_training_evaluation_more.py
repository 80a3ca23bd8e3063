"""Multiclass and regression holdout metrics, and segmentation scores, sizes and profiles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.metrics import (
    balanced_accuracy_score,
    calinski_harabasz_score,
    classification_report,
    davies_bouldin_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
    silhouette_score,
)
from sklearn.preprocessing import StandardScaler

from workers.training.evaluation_multiclass import multiclass_metrics
from workers.training.evaluation_regression import regression_metrics
from workers.training.segments import (
    _sample_rows,
    clustering_scores,
    eta_squared,
    segment_profiles,
    segment_sizes,
    silhouette,
)

BANK = Path(__file__).resolve().parents[2] / "data" / "bank_marketing_dated.parquet"


def strict_json(value: object) -> None:
    json.dumps(value, allow_nan=False)


# ------------------------------------------------------------------ multiclass

# Six rows, true classes 0 0 1 1 2 2; predicted (argmax) 0 1 1 1 2 0.
HAND_Y = np.array([0, 0, 1, 1, 2, 2])
HAND_PROBA = np.array(
    [
        [0.6, 0.3, 0.1],
        [0.3, 0.5, 0.2],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.1, 0.1, 0.8],
        [0.5, 0.2, 0.3],
    ]
)


def test_multiclass_by_hand() -> None:
    metrics = multiclass_metrics(HAND_Y, HAND_PROBA, ["a", "b", "c"])
    # Confusion (rows true): a -> 1 a, 1 b; b -> 2 b; c -> 1 a, 1 c.
    assert metrics["confusion"] == {
        "labels": ["a", "b", "c"],
        "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 1]],
    }
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # Precision 1/2, 2/3, 1; recall 1/2, 1, 1/2; F1 1/2, 4/5, 2/3.
    assert [row["f1"] for row in metrics["per_class"]] == pytest.approx([0.5, 0.8, 2 / 3])
    assert metrics["per_class"][1] == pytest.approx(
        {"class": "b", "precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    # Probabilities of the true class: .6 .3 .7 .8 .8 .3.
    expected_loss = -np.mean(np.log([0.6, 0.3, 0.7, 0.8, 0.8, 0.3]))
    assert metrics["log_loss"] == pytest.approx(expected_loss)
    # One-vs-rest AUC: a ranks 7 of its 8 pairs right (.3 below the .5 of a c row); b and c all.
    assert metrics["roc_auc_ovr"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    assert metrics["rows"] == 6
    assert metrics["class_shares"] == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    strict_json(metrics)


def test_multiclass_matches_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(7)
    n, classes = 400, ["low", "mid", "high", "top"]
    proba = rng.dirichlet(np.ones(4), size=n)
    y = np.array([rng.choice(4, p=row) for row in proba])
    predicted = proba.argmax(axis=1)
    metrics = multiclass_metrics(y, proba, classes)
    assert metrics["roc_auc_ovr"] == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert metrics["log_loss"] == pytest.approx(log_loss(y, proba))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, predicted))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    report = classification_report(y, predicted, output_dict=True, zero_division=0)
    for code, row in enumerate(metrics["per_class"]):
        expected = report[str(code)]
        assert row["class"] == classes[code]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (expected["precision"], expected["recall"], expected["f1-score"])
        )
        assert row["support"] == expected["support"]
    assert sum(metrics["class_shares"].values()) == pytest.approx(1.0)
    strict_json(metrics)


def test_absent_class_has_no_auc_and_counts_zero() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    metrics = multiclass_metrics(y, proba, ["a", "b", "c"])
    assert metrics["roc_auc_ovr"] is None
    assert metrics["per_class"][2] == {
        "class": "c",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert metrics["class_shares"]["c"] == 0.0
    assert metrics["confusion"]["matrix"][2] == [0, 0, 0]
    # Recall over present classes only: a 1/2, b 2/2.
    assert metrics["balanced_accuracy"] == pytest.approx(0.75)
    assert metrics["log_loss"] == pytest.approx(log_loss(y, proba, labels=[0, 1, 2]))
    strict_json(metrics)


@pytest.mark.parametrize(
    ("y", "proba", "classes"),
    [
        (np.array([0, 1]), np.full((2, 2), 0.5), ["only"]),  # one class name
        (np.array([0, 1]), np.full((2, 3), 1 / 3), ["a", "b"]),  # columns vs names
        (np.array([0, 2]), np.full((2, 2), 0.5), ["a", "b"]),  # code out of range
        (np.array([], dtype=int), np.empty((0, 2)), ["a", "b"]),  # empty
    ],
)
def test_multiclass_rejects_bad_input(y: np.ndarray, proba: np.ndarray, classes: list) -> None:
    with pytest.raises(ValueError):
        multiclass_metrics(y, proba, classes)


# ------------------------------------------------------------------ regression


def test_regression_by_hand() -> None:
    y = np.array([0.0, 0.0, 2.0, 4.0])
    pred = np.array([1.0, 0.0, 2.0, 3.0])
    metrics = regression_metrics(y, pred)
    # Errors 1 0 0 -1: MSE 2/4, MAE 2/4. Mean target 1.5, total sum of squares 11.
    assert metrics["rmse"] == pytest.approx(math.sqrt(0.5))
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 2 / 11)
    # Ranks y 1.5 1.5 3 4, pred 2 1 3 4: covariance 4.5 over sqrt(4.5 · 5), i.e. 3/sqrt(10).
    assert metrics["spearman"] == pytest.approx(3 / math.sqrt(10))
    assert (metrics["rows"], metrics["mean_target"], metrics["mean_prediction"]) == (4, 1.5, 1.5)
    assert metrics["zero_share"] == 0.5
    # Four rows give four groups, lowest prediction first.
    assert metrics["deciles"] == [
        {"decile": 1, "rows": 1, "mean_predicted": 0.0, "mean_actual": 0.0},
        {"decile": 2, "rows": 1, "mean_predicted": 1.0, "mean_actual": 0.0},
        {"decile": 3, "rows": 1, "mean_predicted": 2.0, "mean_actual": 2.0},
        {"decile": 4, "rows": 1, "mean_predicted": 3.0, "mean_actual": 4.0},
    ]
    strict_json(metrics)


def test_regression_matches_sklearn_and_scipy_on_random_data() -> None:
    rng = np.random.default_rng(8)
    n = 1003
    y = np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(3.0, 1.0, n))
    pred = 0.5 * y + rng.gamma(2.0, 5.0, n)
    metrics = regression_metrics(y, pred)
    assert metrics["rmse"] == pytest.approx(root_mean_squared_error(y, pred))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, pred))
    assert metrics["r2"] == pytest.approx(r2_score(y, pred))
    assert metrics["spearman"] == pytest.approx(spearmanr(y, pred).statistic)
    assert metrics["zero_share"] == pytest.approx(np.mean(y == 0))
    deciles = metrics["deciles"]
    # 1003 rows: three groups of 101, seven of 100; the rows and the means add up.
    assert [d["rows"] for d in deciles] == [101] * 3 + [100] * 7
    assert sum(d["rows"] * d["mean_actual"] for d in deciles) == pytest.approx(y.sum())
    assert sum(d["rows"] * d["mean_predicted"] for d in deciles) == pytest.approx(pred.sum())
    predicted_means = [d["mean_predicted"] for d in deciles]
    assert predicted_means == sorted(predicted_means)
    assert deciles[-1]["mean_actual"] > deciles[0]["mean_actual"]  # the model has lift
    strict_json(metrics)


def test_tied_predictions_split_by_row_order() -> None:
    y = np.arange(20, dtype=float)
    metrics = regression_metrics(y, np.full(20, 3.0))
    assert metrics["spearman"] is None  # constant prediction: no ranking
    # Stable order keeps rows 0..19 in place: groups (0, 1), (2, 3), ... of two rows each.
    assert [d["mean_actual"] for d in metrics["deciles"]] == [2 * i + 0.5 for i in range(10)]
    assert all(d["rows"] == 2 and d["mean_predicted"] == 3.0 for d in metrics["deciles"])
    strict_json(metrics)


def test_constant_target_and_single_row() -> None:
    constant = regression_metrics(np.zeros(5), np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    assert constant["spearman"] is None and constant["zero_share"] == 1.0
    strict_json(constant)
    one = regression_metrics(np.array([2.0]), np.array([3.0]))
    assert one["r2"] is None and one["spearman"] is None and one["rmse"] == 1.0
    assert one["deciles"] == [{"decile": 1, "rows": 1, "mean_predicted": 3.0, "mean_actual": 2.0}]
    strict_json(one)


@pytest.mark.parametrize(
    ("y", "pred"),
    [
        (np.array([1.0, np.nan]), np.array([1.0, 2.0])),
        (np.array([1.0, 2.0]), np.array([1.0, np.inf])),
        (np.array([1.0, 2.0]), np.array([1.0])),
        (np.array([]), np.array([])),
    ],
)
def test_regression_rejects_bad_input(y: np.ndarray, pred: np.ndarray) -> None:
    with pytest.raises(ValueError):
        regression_metrics(y, pred)


# ------------------------------------------------------------------ clustering scores


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    return centres[labels] + rng.normal(size=(n, 2)), labels


def test_silhouette_by_hand() -> None:
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    labels = np.array([0, 0, 1, 1])
    # a = 1 for every point; b = 10.5, 9.5, 9.5, 10.5; s = 1 - a/b.
    expected = (2 * (1 - 1 / 10.5) + 2 * (1 - 1 / 9.5)) / 4
    assert silhouette(X, labels, seed=0) == pytest.approx(expected)
    assert clustering_scores(X, labels, seed=0)["silhouette"] == pytest.approx(expected)


def test_scores_on_all_rows_match_sklearn() -> None:
    X, labels = blobs(600, seed=9)
    scores = clustering_scores(X, labels, seed=1, max_rows=600)
    assert scores["silhouette"] == pytest.approx(silhouette_score(X, labels))
    assert scores["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, labels))
    assert scores["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, labels))
    assert silhouette(X, labels, seed=1, max_rows=10_000) == pytest.approx(scores["silhouette"])
    strict_json(scores)


def test_sampled_silhouette_is_seeded_and_close() -> None:
    X, labels = blobs(5000, seed=10)
    full = silhouette_score(X, labels)
    sampled = silhouette(X, labels, seed=2, max_rows=800)
    assert sampled == silhouette(X, labels, seed=2, max_rows=800)
    assert sampled != silhouette(X, labels, seed=3, max_rows=800)
    assert sampled == pytest.approx(full, abs=0.03)
    # Davies-Bouldin and Calinski-Harabasz are not sampled.
    scores = clustering_scores(X, labels, seed=2, max_rows=800)
    assert scores["silhouette"] == sampled
    assert scores["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, labels))


def test_sample_keeps_each_segment_share_and_every_segment() -> None:
    labels = np.array([0] * 7000 + [1] * 2990 + [2] * 10)
    rows = _sample_rows(labels, 100, seed=4)
    assert len(rows) == 100 and len(np.unique(rows)) == 100
    assert np.array_equal(rows, np.sort(rows))
    # Quotas 70, 29.9, 0.1 floor to 70, 29, 0; the rare segment is raised to one row.
    assert np.bincount(labels[rows]).tolist() == [70, 29, 1]
    many = np.repeat(np.arange(50), 3)  # 150 rows, 50 segments, room for 40
    assert len(_sample_rows(many, 40, seed=4)) == 40


@pytest.mark.parametrize(
    "labels",
    [np.zeros(6, dtype=int), np.arange(6)],  # one segment; every row its own segment
    ids=["one-segment", "singletons"],
)
def test_degenerate_clustering_loses_instead_of_crashing(labels: np.ndarray) -> None:
    X = np.arange(12, dtype=float).reshape(6, 2)
    assert silhouette(X, labels, seed=0) == -1.0
    assert clustering_scores(X, labels, seed=0) == {
        "silhouette": None,
        "davies_bouldin": None,
        "calinski_harabasz": None,
    }


def test_segment_sizes_include_empty_segments() -> None:
    assert segment_sizes(np.array([0, 0, 2, 0]), 4) == [
        {"segment": 0, "rows": 3, "share": 0.75},
        {"segment": 1, "rows": 0, "share": 0.0},
        {"segment": 2, "rows": 1, "share": 0.25},
        {"segment": 3, "rows": 0, "share": 0.0},
    ]
    assert segment_sizes(np.array([], dtype=int), 2)[1] == {"segment": 1, "rows": 0, "share": 0.0}
    with pytest.raises(ValueError):
        segment_sizes(np.array([0, 3]), 3)


# ------------------------------------------------------------------ profiles


def test_eta_squared_two_groups_by_hand() -> None:
    # Mean 5; total SS 16+9+4+4+9+16 = 58; group means 2 and 8, between SS 3·9 + 3·9 = 54.
    values = np.array([1.0, 2.0, 3.0, 7.0, 8.0, 9.0, np.nan])
    codes = np.array([0, 0, 0, 1, 1, 1, 1])
    assert eta_squared(values, codes, 2) == pytest.approx(54 / 58)
    assert eta_squared(np.full(4, 2.0), np.array([0, 0, 1, 1]), 2) is None
    assert eta_squared(np.full(2, np.nan), np.array([0, 1]), 2) is None


def test_profiles_by_hand_with_nullable_dtypes_and_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "spend": pd.array([1, 2, 3, 7, 8, None], dtype="Int64"),
            "flag": pd.array([True, False, None, True, True, True], dtype="boolean"),
            "score": pd.array([0.5, None, 0.5, 0.5, 0.5, 0.5], dtype="Float64"),
            "aa_same": [1.0] * 6,
            "city": pd.array(["NY", "LA", None, "SF", "SF", None], dtype="string"),
            "tier": pd.Categorical(["b", "a", "a", "b", "b", "b"]),
        },
        index=[10, 11, 12, 13, 14, 15],  # not positional: labels follow row order
    )
    labels = np.array([0, 0, 0, 1, 1, 1])
    profiles = segment_profiles(
        frame, labels, ["spend", "flag", "score", "aa_same"], ["city", "tier"], top=3
    )
    # spend: 1 2 3 | 7 8 (NaN ignored), mean 4.2, group means 2 and 7.5:
    # between 3·2.2² + 2·3.3² = 36.3, total 3.2²+2.2²+1.2²+2.8²+3.8² = 38.8.
    # flag: T F | T T T (NaN ignored), mean .8, between 2·.3² + 3·.2² = .3, total .8 → 3/8.
    # score and aa_same do not vary: ranked last, by name.
    assert profiles["top_features"] == [
        {"feature": "spend", "eta_squared": pytest.approx(36.3 / 38.8)},
        {"feature": "flag", "eta_squared": pytest.approx(0.375)},
        {"feature": "aa_same", "eta_squared": None},
    ]
    first, second = profiles["segments"]
    assert (first["segment"], first["rows"], first["share"]) == (0, 3, 0.5)
    spend = first["features"][0]
    # Population std of 1 2 3 7 8 (ddof 0): sqrt(38.8 / 5).
    assert spend == pytest.approx(
        {
            "feature": "spend",
            "mean": 2.0,
            "population_mean": 4.2,
            "difference_in_std": (2.0 - 4.2) / math.sqrt(38.8 / 5),
        }
    )
    assert second["features"][2] == {
        "feature": "aa_same",
        "mean": 1.0,
        "population_mean": 1.0,
        "difference_in_std": None,
    }
    # City: segment 0 has NY, LA and a missing value: a tie, NY and LA, goes to LA by name.
    assert first["categories"] == [
        {"feature": "city", "top_value": "LA", "share": 1 / 3, "population_share": 1 / 6},
        {"feature": "tier", "top_value": "a", "share": 2 / 3, "population_share": 2 / 6},
    ]
    assert second["categories"][0] == {
        "feature": "city",
        "top_value": "SF",
        "share": 2 / 3,
        "population_share": 2 / 6,
    }
    strict_json(profiles)


def test_all_missing_column_in_a_segment() -> None:
    frame = pd.DataFrame(
        {
            "x": pd.array([None, None, 1.0, 3.0], dtype="Float64"),
            "c": pd.array([None, None, "u", "v"], dtype="string"),
        }
    )
    profiles = segment_profiles(frame, np.array([0, 0, 1, 1]), ["x"], ["c"])
    empty = profiles["segments"][0]
    assert empty["features"][0]["mean"] is None
    assert empty["features"][0]["difference_in_std"] is None
    assert empty["categories"][0] == {
        "feature": "c",
        "top_value": None,
        "share": None,
        "population_share": None,
    }
    # x is present only in segment 1, so it cannot separate segments: eta² = 0.
    assert profiles["top_features"] == [{"feature": "x", "eta_squared": 0.0}]
    strict_json(profiles)


def test_profiles_of_kmeans_segments_on_bank_marketing() -> None:
    numeric = ["age", "balance", "campaign", "pdays", "previous"]
    categorical = ["job", "marital", "y"]
    frame = pd.read_parquet(BANK, columns=numeric + categorical).sample(2000, random_state=0)
    X = StandardScaler().fit_transform(frame[numeric].to_numpy(dtype=float))
    labels = KMeans(n_clusters=3, n_init=4, random_state=0).fit_predict(X)

    profiles = segment_profiles(frame, labels, numeric, categorical, top=4)
    assert len(profiles["top_features"]) == 4
    etas = [item["eta_squared"] for item in profiles["top_features"]]
    assert all(0.0 <= eta <= 1.0 for eta in etas) and etas == sorted(etas, reverse=True)
    assert sum(segment["share"] for segment in profiles["segments"]) == pytest.approx(1.0)
    assert sum(segment["rows"] for segment in profiles["segments"]) == 2000
    for segment in profiles["segments"]:
        assert [c["feature"] for c in segment["categories"]] == categorical
        assert all(0.0 < c["share"] <= 1.0 for c in segment["categories"])

    sizes = segment_sizes(labels, 3)
    assert [s["rows"] for s in sizes] == [s["rows"] for s in profiles["segments"]]
    scores = clustering_scores(X, labels, seed=0, max_rows=500)
    assert scores["silhouette"] is not None and -1.0 <= scores["silhouette"] <= 1.0
    assert scores["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, labels))
    strict_json({"profiles": profiles, "sizes": sizes, "scores": scores})

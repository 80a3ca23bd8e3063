"""Holdout evaluation (threshold, metrics, calibration, importances) and reference statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline

from workers.training.evaluation import (
    calibration_table,
    choose_threshold,
    holdout_metrics,
    permutation_importances,
)
from workers.training.reference import reference_statistics

# ------------------------------------------------------------------ threshold


def test_f1_threshold_by_hand() -> None:
    # Candidates .1 .4 .5 .6 .7 .9 give F1 6/8, 6/7, 4/6, 4/6, 4/5, 2/4: best .4 (TP 3, FP 1).
    y = np.array([0, 0, 1, 1, 1])
    proba = np.array([0.1, 0.6, 0.4, 0.7, 0.9])
    chosen = choose_threshold(y, proba)
    assert chosen == pytest.approx(
        {"threshold": 0.4, "f1": 6 / 7, "precision": 0.75, "recall": 1.0}
    )


def test_f1_ties_go_to_the_threshold_closest_to_one_half() -> None:
    # Candidates .2 .3 .5 .7 .9 give F1 4/6, 2/5, 2/4, 2/4, 2/3: .2 and .9 tie, .2 is closer.
    y = np.array([1, 0, 0, 1])
    proba = np.array([0.2, 0.3, 0.7, 0.9])
    chosen = choose_threshold(y, proba)
    assert chosen == pytest.approx({"threshold": 0.2, "f1": 2 / 3, "precision": 0.5, "recall": 1})


def test_cost_threshold_moves_down_when_misses_cost_more() -> None:
    # Candidates .3 .4 .5 .7 .9 -> (FP, FN) = (3,0) (2,0) (2,1) (1,1) (0,1).
    y = np.array([0, 0, 0, 1, 1])
    proba = np.array([0.3, 0.5, 0.7, 0.4, 0.9])
    even = choose_threshold(y, proba, objective="cost")
    assert even == pytest.approx({"threshold": 0.9, "cost": 1.0, "precision": 1.0, "recall": 0.5})
    costly_misses = choose_threshold(y, proba, objective="cost", cost_fn=5.0)
    assert costly_misses == pytest.approx(
        {"threshold": 0.4, "cost": 2.0, "precision": 0.5, "recall": 1.0}
    )


# ------------------------------------------------------------------ metrics


def test_calibration_table_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    proba = rng.beta(0.7, 2.0, size=500)
    proba[:5] = [0.0, 0.1, 0.2, 1.0, 0.5]  # edges fall in the bin below, as in sklearn
    y = (rng.random(500) < proba).astype(int)
    table = calibration_table(y, proba, bins=10)
    true, predicted = calibration_curve(y, proba, n_bins=10, strategy="uniform")
    assert [row["fraction_positive"] for row in table] == pytest.approx(list(true))
    assert [row["mean_predicted"] for row in table] == pytest.approx(list(predicted))
    assert sum(row["count"] for row in table) == 500
    assert all(row["upper"] - row["lower"] == pytest.approx(0.1) for row in table)


def test_holdout_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(4)
    proba = rng.random(300)
    y = (rng.random(300) < proba).astype(int)
    predicted = (proba >= 0.4).astype(int)
    metrics = holdout_metrics(y, proba, 0.4)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, proba))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, proba))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert metrics["precision"] == pytest.approx(precision_score(y, predicted))
    assert metrics["recall"] == pytest.approx(recall_score(y, predicted))
    assert metrics["f1"] == pytest.approx(f1_score(y, predicted))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, proba))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, proba))
    assert metrics["rows"] == 300 and metrics["positives"] == y.sum()
    assert metrics["base_rate"] == pytest.approx(y.mean())
    assert metrics["calibration"] == calibration_table(y, proba)
    json.dumps(metrics, allow_nan=False)


def test_confusion_counts_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 0, 1])
    proba = np.array([0.9, 0.3, 0.6, 0.2, 0.1, 0.5])  # at .5: 9 and 5 hit, 3 missed, 6 false
    metrics = holdout_metrics(y, proba, 0.5)
    assert metrics["confusion"] == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(4 / 6)


def test_single_class_holdout_has_no_auc() -> None:
    metrics = holdout_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.9]), 0.5)
    assert metrics["roc_auc"] is None and metrics["pr_auc"] is None
    assert metrics["precision"] == 0.0 and metrics["confusion"]["fp"] == 1
    json.dumps(metrics, allow_nan=False)


def test_permutation_importance_finds_the_signal_column() -> None:
    rng = np.random.default_rng(5)
    n = 600
    X = pd.DataFrame({"noise": rng.normal(size=n), "a": rng.normal(size=n)})
    y = (X["a"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()
    pipeline = Pipeline([("model", LogisticRegression())]).fit(X, y)
    found = permutation_importances(pipeline, X, y, seed=0, n_repeats=3, max_rows=300)
    assert [item["feature"] for item in found] == ["a", "noise"]
    assert float(found[0]["mean"]) > 0.3
    assert abs(float(found[1]["mean"])) < 0.02


# ------------------------------------------------------------------ reference statistics


def reference_frame() -> pd.DataFrame:
    rng = np.random.default_rng(6)
    n = 200
    amount = rng.lognormal(size=n)
    amount[::10] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.integers(0, 3, size=n),
            "vip": rng.random(n) < 0.25,
            "empty": np.full(n, np.nan),
            "city": rng.choice(["NY", "LA", "SF", "CA"], size=n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )


def reference() -> dict:
    frame = reference_frame()
    frame.loc[:9, "city"] = None
    scores = np.linspace(0.0, 1.0, 51)
    return reference_statistics(
        frame, ["amount", "visits", "vip", "empty"], ["city"], scores, top_categories=2
    )


def test_numeric_quantiles_and_moments() -> None:
    amount = reference_frame()["amount"].dropna().to_numpy()
    stats = reference()["features"]["amount"]
    assert stats["quantiles"] == pytest.approx(list(np.quantile(amount, np.linspace(0, 1, 101))))
    assert stats["count"] == 180 and stats["missing_share"] == pytest.approx(0.1)
    assert stats["mean"] == pytest.approx(amount.mean())
    assert stats["std"] == pytest.approx(amount.std(ddof=1))
    assert (stats["min"], stats["max"]) == (amount.min(), amount.max())
    assert stats["distinct"] == 180 and "values" not in stats


def test_low_cardinality_numeric_gets_value_shares() -> None:
    features = reference()["features"]
    visits = reference_frame()["visits"]
    assert features["visits"]["values"] == pytest.approx(
        {f"{v:.1f}": (visits == v).mean() for v in (0, 1, 2)}
    )
    vip = reference_frame()["vip"].mean()
    assert features["vip"]["values"] == pytest.approx({"0.0": 1 - vip, "1.0": vip})
    assert features["vip"]["kind"] == "numeric" and features["vip"]["mean"] == pytest.approx(vip)


def test_categorical_shares_sum_to_one_with_other() -> None:
    city = reference()["features"]["city"]
    assert city["count"] == 190 and city["missing_share"] == pytest.approx(0.05)
    assert list(city["frequencies"]) == ["NY", "LA"] and city["distinct"] == 4
    assert sum(city["frequencies"].values()) + city["other_share"] == pytest.approx(1.0)


def test_all_missing_column_gives_none_and_the_result_is_strict_json() -> None:
    result = reference()
    empty = result["features"]["empty"]
    assert empty["missing_share"] == 1.0 and empty["count"] == 0
    assert [empty[k] for k in ("mean", "std", "min", "max", "quantiles")] == [None] * 5
    json.dumps(result, allow_nan=False)


def test_one_row_has_no_std() -> None:
    one = pd.DataFrame({"x": [2.0], "c": ["a"]})
    result = reference_statistics(one, ["x"], ["c"], np.array([0.3]))
    assert result["features"]["x"]["std"] is None and result["features"]["x"]["mean"] == 2.0
    assert result["features"]["c"] == {
        "kind": "categorical",
        "count": 1,
        "missing_share": 0.0,
        "frequencies": {"a": 1.0},
        "other_share": 0.0,
        "distinct": 1,
    }
    json.dumps(result, allow_nan=False)


def test_score_distribution() -> None:
    scores = reference()["scores"]
    assert scores["count"] == 51 and scores["mean"] == pytest.approx(0.5)
    assert len(scores["quantiles"]) == 101 and scores["quantiles"][50] == pytest.approx(0.5)
    assert scores["histogram"]["edges"] == pytest.approx(list(np.linspace(0, 1, 21)))
    # 51 points 0.02 apart: 2.5 per bin of 0.05, the last bin also holding 1.0.
    assert sum(scores["histogram"]["counts"]) == 51

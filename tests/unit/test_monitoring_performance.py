"""Concept drift check: metric values against sklearn, bootstrap interval, decisions, coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score, roc_auc_score

from workers.monitoring.performance import BOOTSTRAP_RESAMPLES, performance_check


def binary_window(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels; scores N(shift, 1) for positives, N(0, 1) for negatives, squeezed
    into (0, 1). True AUC = Phi(shift / sqrt 2) (the squeeze keeps the order)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    raw = rng.normal(size=n) + shift * y
    return y, 1 / (1 + np.exp(-raw))


def test_values_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=400)
    score = np.round(rng.random(400) * 0.7 + 0.3 * y, 1)  # rounded: many ties
    auc = performance_check(y, score, problem="binary", metric="roc_auc", baseline=0.8)
    assert auc.value == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    acc = performance_check(
        y, score, problem="binary", metric="accuracy", baseline=0.8, threshold=0.6
    )
    assert acc.value == pytest.approx(accuracy_score(y, score >= 0.6), abs=1e-12)

    target = rng.normal(size=300)
    pred = target + rng.normal(scale=0.5, size=300)
    r2 = performance_check(target, pred, problem="regression", metric="r2", baseline=0.5)
    assert r2.value == pytest.approx(r2_score(target, pred), abs=1e-12)
    mae = performance_check(target, pred, problem="regression", metric="mae", baseline=0.4)
    assert mae.value == pytest.approx(mean_absolute_error(target, pred), abs=1e-12)
    rmse = performance_check(target, pred, problem="regression", metric="rmse", baseline=0.4)
    assert rmse.value == pytest.approx(math.sqrt(np.mean((target - pred) ** 2)), abs=1e-12)

    proba = rng.dirichlet([1, 1, 1], size=250)
    codes = rng.integers(0, 3, size=250)
    multi = performance_check(codes, proba, problem="multiclass", metric="accuracy", baseline=0.5)
    assert multi.value == pytest.approx(accuracy_score(codes, proba.argmax(axis=1)))
    labels = np.array(["a", "b", "c"])
    by_label = performance_check(
        labels[codes],
        labels[proba.argmax(axis=1)],
        problem="multiclass",
        metric="accuracy",
        baseline=0.5,
    )
    assert by_label.value == multi.value


def test_interval_is_the_percentile_of_sklearn_on_the_same_resamples() -> None:
    # One chunk of 500 resamples (500 x 300 < CHUNK_CELLS), drawn as the module draws them.
    y, score = binary_window(300, 1.0, seed=5)
    check = performance_check(y, score, problem="binary", metric="roc_auc", baseline=0.8, seed=7)
    rows = np.random.default_rng(7).integers(0, 300, size=(BOOTSTRAP_RESAMPLES, 300))
    aucs = [roc_auc_score(y[r], score[r]) for r in rows]
    low, high = np.percentile(aucs, [2.5, 97.5])
    assert (check.ci_low, check.ci_high) == (pytest.approx(low), pytest.approx(high))

    target = np.random.default_rng(1).normal(size=300)
    pred = target + np.random.default_rng(2).normal(size=300)
    r2 = performance_check(target, pred, problem="regression", metric="r2", baseline=0.5, seed=7)
    r2s = [r2_score(target[r], pred[r]) for r in rows]
    assert (r2.ci_low, r2.ci_high) == tuple(
        pytest.approx(v) for v in np.percentile(r2s, [2.5, 97.5])
    )


def test_below_min_rows_is_insufficient_and_never_drift() -> None:
    y = np.zeros(199, dtype=int)
    y[::2] = 1
    wrong = 1.0 - y  # every prediction wrong: accuracy 0 against a baseline of 0.9
    check = performance_check(y, wrong, problem="binary", metric="accuracy", baseline=0.9)
    assert check.status == "insufficient_data"
    assert (check.n, check.min_rows, check.value, check.drop) == (199, 200, 0.0, 0.9)
    assert check.ci_low is None and check.ci_high is None


def test_unlabelled_rows_do_not_count() -> None:
    y, score = binary_window(400, 1.0, seed=1)
    labels = y.astype(float)
    late = np.arange(400) % 8 < 5
    labels[late] = np.nan  # labels not arrived yet: 150 of 400 rows are labelled
    check = performance_check(labels, score, problem="binary", metric="roc_auc", baseline=0.76)
    assert check.n == 150 and check.status == "insufficient_data"
    assert check.value == pytest.approx(roc_auc_score(y[~late], score[~late]))


def test_a_clear_drop_is_flagged() -> None:
    y, score = binary_window(2000, 0.6, seed=2)  # true AUC 0.664 against a baseline of 0.85
    check = performance_check(y, score, problem="binary", metric="roc_auc", baseline=0.85)
    assert check.status == "drifted"
    assert check.drop == pytest.approx(0.85 - check.value) and check.drop > 0.15
    assert check.ci_high is not None and check.ci_high < 0.85
    assert "exceeds 0.05" in check.message


def test_a_drop_within_the_noise_is_not_flagged() -> None:
    # 148 of 200 right: accuracy 0.74, 0.06 below 0.80 (> 0.05), but the bootstrap
    # interval (about +-0.06) still reaches the baseline.
    y = np.ones(200, dtype=int)
    pred = np.ones(200)
    pred[:52] = 0.0
    check = performance_check(y, pred, problem="binary", metric="accuracy", baseline=0.8)
    assert check.value == pytest.approx(0.74) and check.drop == pytest.approx(0.06)
    assert check.ci_high is not None and check.ci_high >= 0.8
    assert check.status == "ok" and "within noise" in check.message


def test_a_significant_drop_below_the_tolerance_is_ok() -> None:
    y = np.ones(20000, dtype=int)
    pred = np.ones(20000)
    pred[:4400] = 0.0  # accuracy 0.78 vs 0.80: drop 0.02, interval about +-0.006
    check = performance_check(y, pred, problem="binary", metric="accuracy", baseline=0.8)
    assert check.ci_high is not None and check.ci_high < 0.8
    assert check.status == "ok" and "significant" in check.message


def test_error_metrics_drop_is_the_relative_increase() -> None:
    rng = np.random.default_rng(4)
    target = rng.normal(size=1000)
    pred = target + rng.choice([-1.0, 1.0], size=1000)  # every absolute error is exactly 1
    worse = performance_check(target, pred, problem="regression", metric="mae", baseline=0.8)
    assert worse.value == pytest.approx(1.0) and worse.drop == pytest.approx(0.25)
    assert worse.status == "drifted" and worse.ci_low == pytest.approx(1.0)
    better = performance_check(target, pred, problem="regression", metric="mae", baseline=1.25)
    assert better.drop == pytest.approx(-0.2) and better.status == "ok"


def test_no_baseline() -> None:
    y, score = binary_window(400, 1.0, seed=1)
    for baseline in (None, math.nan):
        check = performance_check(y, score, problem="binary", metric="roc_auc", baseline=baseline)
        assert check.status == "no_baseline" and check.drop is None and check.baseline is None
        assert check.ci_low is not None and check.ci_low < check.value < check.ci_high
    target = np.arange(300.0)
    zero = performance_check(target, target, problem="regression", metric="mae", baseline=0.0)
    assert zero.status == "no_baseline"  # an error baseline of 0 gives no relative scale


def test_single_class_auc_is_insufficient() -> None:
    check = performance_check(
        np.ones(300, dtype=int),
        np.linspace(0, 1, 300),
        problem="binary",
        metric="roc_auc",
        baseline=0.8,
    )
    assert check.status == "insufficient_data" and check.value is None


def test_same_seed_same_interval_and_json() -> None:
    y, score = binary_window(300, 1.0, seed=9)
    a = performance_check(y, score, problem="binary", metric="roc_auc", baseline=0.8, seed=3)
    b = performance_check(y, score, problem="binary", metric="roc_auc", baseline=0.8, seed=3)
    assert a == b
    assert set(a.to_json()) == {
        "metric",
        "baseline",
        "value",
        "drop",
        "ci_low",
        "ci_high",
        "n",
        "min_rows",
        "status",
        "message",
    }


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not monitored"):
        performance_check([1, 0], [0.3, 0.2], problem="binary", metric="r2", baseline=0.5)
    with pytest.raises(ValueError, match="0/1"):
        performance_check([2, 0], [0.3, 0.2], problem="binary", metric="roc_auc", baseline=0.5)
    with pytest.raises(ValueError, match="equally long"):
        performance_check([1, 0], [0.3], problem="binary", metric="roc_auc", baseline=0.5)


@pytest.mark.parametrize(
    ("metric", "floor"),
    [("accuracy", 0.88), ("roc_auc", 0.86)],  # the percentile bootstrap under-covers a bit
)
def test_interval_coverage_by_simulation(metric: str, floor: float) -> None:
    """120 windows of 200 rows from a known model: the 95% interval should hold the true
    value in about 95% of them (binomial sd 2%; the floors leave room for the bootstrap's
    known slight under-coverage at this size)."""
    shift = 1.2
    true_auc = norm.cdf(shift / math.sqrt(2))
    true_accuracy = norm.cdf(shift / 2)  # threshold at the midpoint: logistic(shift / 2)
    truth = true_auc if metric == "roc_auc" else true_accuracy
    hits = 0
    reps = 120
    for rep in range(reps):
        y, score = binary_window(200, shift, seed=100 + rep)
        check = performance_check(
            y,
            score,
            problem="binary",
            metric=metric,
            baseline=0.99,
            threshold=1 / (1 + math.exp(-shift / 2)),
            seed=rep,
        )
        assert check.ci_low is not None and check.ci_high is not None
        hits += check.ci_low <= truth <= check.ci_high
    assert floor <= hits / reps <= 1.0


def test_a_big_window_is_bootstrapped_on_a_subsample_with_the_same_spread() -> None:
    """60,000 labelled rows: the subsample interval (20,000 rows, spread scaled by
    sqrt(20,000 / 60,000)) is as wide as the full bootstrap's, around the full value."""
    from workers.monitoring import performance as perf

    rng = np.random.default_rng(3)
    n = 60_000
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    check = performance_check(y, score, problem="binary", metric="roc_auc", baseline=0.9)
    assert check.value == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    full_low, full_high = perf._interval(perf._roc_auc(y.astype(float), score), n, seed=0)
    assert full_low is not None and full_high is not None
    assert check.ci_low is not None and check.ci_high is not None
    assert check.ci_low < check.value < check.ci_high
    width, full_width = check.ci_high - check.ci_low, full_high - full_low
    assert width == pytest.approx(full_width, rel=0.25)

"""Champion/challenger decisions: DeLong against sklearn and the 1988 definitions, the
paired bootstrap, the data guards, and seeded simulations (small;
``benchmarks/challenger_simulation.py`` runs them at full size)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from workers.deployment.challenger import (
    auc_covariance,
    decide,
    delong_test,
    paired_bootstrap,
)
from workers.deployment.challenger_simulation import sample, simulate

ALPHA = 0.05


def slow_delong(y: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong, DeLong & Clarke-Pearson (1988) term by term, O(m·n): psi(X, Y) = 1, 1/2, 0
    as X >, =, < Y; V10(X_i) = mean_j psi(X_i, Y_j) over negatives, V01(Y_j) = mean_i
    psi(X_i, Y_j) over positives; AUC = mean V10; S = S10/m + S01/n with S10, S01 the
    (ddof 1) covariance matrices of the placement values across the scores."""
    x_rows, y_rows = y == 1, y == 0
    m, n = int(x_rows.sum()), int(y_rows.sum())
    v10, v01, aucs = [], [], []
    for score in scores:
        x, w = score[x_rows], score[y_rows]
        psi = np.zeros((m, n))
        for i in range(m):
            for j in range(n):
                psi[i, j] = 1.0 if x[i] > w[j] else 0.5 if x[i] == w[j] else 0.0
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    k = len(scores)
    s10, s01 = np.zeros((k, k)), np.zeros((k, k))
    for r in range(k):
        for s in range(k):
            s10[r, s] = np.sum((v10[r] - aucs[r]) * (v10[s] - aucs[s])) / (m - 1)
            s01[r, s] = np.sum((v01[r] - aucs[r]) * (v01[s] - aucs[s])) / (n - 1)
    return np.array(aucs), s10 / m + s01 / n


def tied_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores rounded to one decimal: many ties, within and across the classes."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2], y[2:4] = 1, 0
    a = np.round(y * 0.5 + rng.standard_normal(n) * 0.5, 1)
    b = np.round(0.7 * a + y * 0.3 + rng.standard_normal(n) * 0.3, 1)
    return y, a, b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aucs_equal_sklearn(seed: int) -> None:
    y, a, b = tied_data(seed, 3000)
    result = delong_test(y, a, b)
    assert result.champion == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result.challenger == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert result.difference == pytest.approx(result.challenger - result.champion, abs=1e-15)


@pytest.mark.parametrize(("seed", "n"), [(0, 40), (1, 120), (2, 300)])
def test_fast_delong_matches_the_1988_definitions(seed: int, n: int) -> None:
    y, a, b = tied_data(seed, n)
    c = np.round(a + b, 1)  # a third, tied score: the covariance is any k x k
    fast_aucs, fast_cov = auc_covariance(y, a, b, c)
    slow_aucs, slow_cov = slow_delong(y, a, b, c)
    np.testing.assert_allclose(fast_aucs, slow_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast_cov, slow_cov, rtol=0, atol=1e-12)
    result = delong_test(y, a, b)
    slow_var = slow_cov[0, 0] + slow_cov[1, 1] - 2 * slow_cov[0, 1]
    assert result.se**2 == pytest.approx(slow_var, abs=1e-12)
    assert result.covariance[0][1] == pytest.approx(slow_cov[0, 1], abs=1e-12)


def test_hand_checked_three_by_three() -> None:
    # Positives / negatives, champion: [.8, .6, .4] / [.5, .4, .2]; challenger:
    # [.9, .7, .45] / [.5, .3, .1].
    # Champion: .8 and .6 beat all 3 negatives; .4 loses to .5, ties .4 (1/2), beats .2:
    #   V10 = [1, 1, 1/2], AUC = 7.5/9 = 5/6; V01 (positives above each negative, ties 1/2)
    #   = [2/3, 5/6, 1]. S10 = var[1, 1, 1/2] = 1/12, S01 = var[2/3, 5/6, 1] = 1/36,
    #   var = 1/12/3 + 1/36/3 = 1/27.
    # Challenger: .9 and .7 beat all 3; .45 beats .3 and .1: V10 = [1, 1, 2/3], AUC = 8/9;
    #   V01 = [2/3, 1, 1]; S10 = S01 = 1/27, var = 2/81.
    # Covariance: cov(V10s) = (1/6·1/9 + 1/6·1/9 + 1/3·2/9)/2 = 1/18, cov(V01s) =
    #   (1/6·2/9 + 0 + 1/6·1/9)/2 = 1/36: cov = 1/18/3 + 1/36/3 = 1/36.
    # Difference 8/9 - 5/6 = 1/18, var 1/27 + 2/81 - 2/36 = 1/162, z = (1/18)·sqrt(162).
    y = np.array([1, 1, 1, 0, 0, 0])
    champion = np.array([0.8, 0.6, 0.4, 0.5, 0.4, 0.2])
    challenger = np.array([0.9, 0.7, 0.45, 0.5, 0.3, 0.1])
    result = delong_test(y, champion, challenger)
    assert result.champion == pytest.approx(5 / 6, abs=1e-12)
    assert result.challenger == pytest.approx(8 / 9, abs=1e-12)
    assert result.difference == pytest.approx(1 / 18, abs=1e-12)
    assert result.covariance[0][0] == pytest.approx(1 / 27, abs=1e-12)
    assert result.covariance[1][1] == pytest.approx(2 / 81, abs=1e-12)
    assert result.covariance[0][1] == pytest.approx(1 / 36, abs=1e-12)
    assert result.se == pytest.approx(math.sqrt(1 / 162), abs=1e-12)
    assert result.p_value == pytest.approx(stats.norm.sf(math.sqrt(162) / 18), abs=1e-12)
    z = stats.norm.ppf(0.975)
    assert result.ci_low == pytest.approx(1 / 18 - z / math.sqrt(162), abs=1e-12)


def test_delong_null_calibration() -> None:
    rng = np.random.default_rng(20240611)
    runs, promoted = 400, 0
    for _ in range(runs):
        _, y, a, b = sample("binary_equal", 2000, rng)
        promoted += delong_test(y, a, b).p_value < ALPHA
    print(f"DeLong under equal AUCs: {promoted}/{runs} one-sided p < {ALPHA}")
    assert promoted / runs <= 0.08


def test_identical_predictions_give_no_improvement() -> None:
    rng = np.random.default_rng(3)
    y = rng.standard_normal(1000)
    prediction = y + rng.standard_normal(1000)
    boot = paired_bootstrap(y, prediction, prediction.copy(), "rmse")
    assert (boot.improvement, boot.ci_low, boot.ci_high, boot.p_value) == (0.0, 0.0, 0.0, 1.0)
    decision = decide("regression", y, prediction, prediction.copy())
    assert decision.verdict == "reject"
    assert decision.improvement == 0.0
    same = delong_test((y > 0).astype(int), prediction, prediction.copy())
    assert (same.difference, same.se, same.p_value) == (0.0, 0.0, 1.0)


def test_paired_bootstrap_is_deterministic_with_the_seed() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 3000)
    a = np.where(rng.random(3000) < 0.6, y, rng.integers(0, 4, 3000))
    b = np.where(rng.random(3000) < 0.65, y, rng.integers(0, 4, 3000))
    first = paired_bootstrap(y, a, b, "accuracy", seed=7)
    assert paired_bootstrap(y, a, b, "accuracy", seed=7) == first
    assert paired_bootstrap(y, a, b, "accuracy", seed=8) != first
    assert first.improvement == pytest.approx(np.mean(b == y) - np.mean(a == y))
    assert first.ci_low < first.improvement < first.ci_high
    labels = np.array(["red", "green", "blue", "grey"])
    decision = decide("multiclass", labels[y], labels[a], labels[b], seed=7)
    assert decision.verdict == "promote", decision.message
    assert decision.test == "paired_bootstrap" and decision.metric == "accuracy"


def test_promote_rule_uses_the_one_sided_bound_and_min_improvement() -> None:
    _, y, a, b = sample("binary_better", 3000, np.random.default_rng(5))
    decision = decide("binary", y, a, b)
    auc = delong_test(y, a, b)
    z = stats.norm.ppf(1 - ALPHA)
    assert decision.ci_low == pytest.approx(auc.difference - z * auc.se, abs=1e-12)
    assert decision.verdict == "promote"
    assert decision.message.startswith(f"challenger ROC AUC {auc.challenger:.3f} vs champion")
    assert "3,000 recent labelled rows: promote" in decision.message
    assert decision.ci_low is not None
    strict = decide("binary", y, a, b, min_improvement=decision.ci_low + 0.001)
    assert strict.verdict == "reject"
    assert "needs the lower bound above" in strict.message


def test_insufficient_data_and_clustering() -> None:
    rng = np.random.default_rng(6)
    y = rng.standard_normal(150)
    few = decide("regression", y, y + 0.1, y + 0.2)
    assert few.verdict == "insufficient_data" and few.n == 150
    assert "only 150 recent labelled rows" in few.message and "200" in few.message
    labels = np.zeros(1000, dtype=int)
    labels[:5] = 1
    scores = rng.random(1000)
    rare = decide("binary", labels, scores, scores)
    assert rare.verdict == "insufficient_data"
    assert "5 positive and 995 negative" in rare.message and "20 of each class" in rare.message
    clustering = decide("clustering", [], [], [])
    assert clustering.verdict == "not_comparable" and clustering.metric is None
    assert "client.deploy" in clustering.message
    for decision in (few, rare, clustering):
        json.dumps(decision.to_json(), allow_nan=False)


def test_missing_rows_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(7)
    y = rng.standard_normal(500)
    a, b = y + rng.standard_normal(500), y + 0.5 * rng.standard_normal(500)
    y[0], a[1], b[2], b[3] = np.nan, np.inf, -np.inf, np.nan
    decision = decide("regression", y, a, b)
    assert (decision.n, decision.dropped) == (496, 4)
    assert "4 with a missing value dropped" in decision.message
    clean = decide("regression", y[4:], a[4:], b[4:])
    assert clean.improvement == decision.improvement and clean.dropped == 0
    labels = np.array([None, 1, 0, 1] * 100, dtype=object)
    tied = decide("binary", labels, np.ones(400), np.ones(400))  # object labels with None
    assert (tied.verdict, tied.n, tied.dropped, tied.p_value) == ("reject", 300, 100, 1.0)
    json.dumps(decision.to_json(), allow_nan=False)


@pytest.mark.parametrize(
    "scenario", ["binary_better", "binary_equal", "regression_better", "regression_equal"]
)
def test_simulation_floors(scenario: str) -> None:
    summary = simulate(scenario, runs=200, n=2000, seed=20240611)
    print(
        f"{scenario}: {summary.verdict} {summary.hits}/{summary.runs} = {summary.rate:.1%} "
        f"(95% Wilson {summary.wilson_low:.1%} - {summary.wilson_high:.1%}); mean champion "
        f"{summary.champion:.3f}, challenger {summary.challenger:.3f}"
    )
    assert summary.rate >= 0.90

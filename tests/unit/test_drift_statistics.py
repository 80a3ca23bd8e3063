"""Drift statistics against scipy, edge cases and the two-gate decision (p-value AND effect)."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workers.monitoring.drift import (
    DriftThresholds,
    benjamini_hochberg,
    categorical_drift,
    data_drift,
    numeric_drift,
    prediction_drift,
    prepare_reference,
)
from workers.monitoring.drift_categorical import OTHER, UNSEEN
from workers.monitoring.drift_numeric import (
    KS_MAX_EXACT_N,
    ks_p_value,
    ks_wasserstein,
    psi_edges_sorted,
    quantiles_sorted,
    reference_scale,
    sorted_finite,
)
from workers.monitoring.psi import psi, psi_bins

TOL = 1e-9


def scipy_numeric(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, float]:
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue), stats.wasserstein_distance(ref, cur)


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=TOL, abs_tol=1e-300)


CASES = {
    # small n: scipy's exact path
    "exact_normal": (lambda r: (r.normal(size=200), r.normal(0.3, 1, 150))),
    "exact_ties": (lambda r: (r.integers(0, 5, 300) * 1.0, r.integers(0, 6, 77) * 1.0)),
    "exact_equal_n": (lambda r: (r.normal(size=500), r.normal(size=500))),
    "exact_nans": (
        lambda r: (
            np.where(r.random(400) < 0.1, np.nan, r.normal(size=400)),
            np.where(r.random(350) < 0.3, np.nan, r.normal(0.1, 1, 350)),
        )
    ),
    "exact_at_limit": (lambda r: (r.normal(size=KS_MAX_EXACT_N), r.normal(size=2_000))),
    # large n: the asymptotic path (max(n1, n2) > 10,000)
    "asymp_normal": (lambda r: (r.normal(size=30_000), r.normal(0.02, 1, 12_000))),
    "asymp_ties": (
        lambda r: (np.round(r.normal(size=20_000), 1), np.round(r.normal(size=15_001), 1))
    ),
    "asymp_nans_skewed": (
        lambda r: (
            np.where(r.random(25_000) < 0.05, np.nan, r.lognormal(size=25_000)),
            r.lognormal(0.05, 1, 9_000),
        )
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ks_and_wasserstein_equal_scipy(case: str) -> None:
    ref, cur = CASES[case](np.random.default_rng(7))
    d, p, w = scipy_numeric(ref, cur)
    feature = numeric_drift("x", ref, cur)
    assert close(feature.statistic, d)
    assert close(feature.p_value, p)
    scale, _ = reference_scale(np.sort(ref[~np.isnan(ref)]))
    assert scale is not None
    assert close(feature.effect, w / scale)
    assert feature.n_reference == np.count_nonzero(~np.isnan(ref))
    assert feature.missing_current == pytest.approx(np.mean(np.isnan(cur)))


def test_merge_kernel_equals_scipy_on_negative_zero_and_duplicates() -> None:
    ref = np.array([-0.0, 0.0, 0.0, 1.0, 1.0, 2.5, -3.0])
    cur = np.array([0.0, -0.0, 1.0, 2.5, 2.5, 7.0])
    a, b = sorted_finite(ref), sorted_finite(cur)
    assert a.tolist() == sorted(ref.tolist())
    d, w = ks_wasserstein(a, b)
    assert close(d, stats.ks_2samp(ref, cur).statistic)
    assert close(w, stats.wasserstein_distance(ref, cur))


def test_sorting_drops_non_finite_values() -> None:
    values = np.array([3.0, np.nan, -np.inf, 1.0, np.inf, -2.0, 1.0])
    assert sorted_finite(values).tolist() == [-2.0, 1.0, 1.0, 3.0]
    ints = np.random.default_rng(0).integers(-1000, 1000, 50_000)
    assert np.array_equal(sorted_finite(ints), np.sort(ints).astype(float))


@pytest.mark.parametrize(
    "make",
    [
        lambda r: r.normal(size=100_000) * 10.0 ** r.integers(-300, 300, 100_000),
        lambda r: r.integers(-1000, 1000, 70_000).astype(float),  # equal low digits
        lambda r: np.r_[np.zeros(40_000), -np.zeros(40_000), r.normal(size=40_000)],
        lambda r: np.r_[r.lognormal(size=90_000), [np.nan, np.inf, -np.inf] * 1000],
        lambda r: np.full(70_000, -2.5),
    ],
)
def test_radix_sort_of_large_arrays_equals_np_sort(make: object) -> None:
    values = make(np.random.default_rng(1))  # type: ignore[operator]
    expected = np.sort(values[np.isfinite(values)])
    result = sorted_finite(values)
    assert result.size == expected.size and np.array_equal(result, expected)
    assert not np.any(np.signbit(result) & (result == 0))  # -0.0 became 0.0


@pytest.mark.parametrize(
    "make",
    [
        lambda r: r.normal(size=5_000),
        lambda r: r.integers(0, 4, 1_000) * 1.0,  # one bin per value
        lambda r: np.full(100, 3.0),  # constant
        lambda r: np.where(r.random(20_000) < 0.96, -1.0, r.integers(1, 28, 20_000)),  # mass
        lambda r: np.r_[np.zeros(600), r.normal(size=400)],
        lambda r: r.integers(0, 12, 3_000) * 1.0,
    ],
)
def test_sorted_psi_edges_equal_psi_bins(make: object) -> None:
    values = make(np.random.default_rng(3))  # type: ignore[operator]
    edges = psi_bins(values)
    assert np.array_equal(psi_edges_sorted(np.sort(values)), edges[1:-1])


def test_psi_equals_psi_module() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=5_000), rng.normal(0.4, 1.2, 3_000)
    assert close(numeric_drift("x", ref, cur).psi, psi(ref, cur))
    ref_days = np.where(rng.random(4_000) < 0.9, -1.0, rng.integers(1, 5, 4_000))
    cur_days = np.where(rng.random(4_000) < 0.8, -1.0, rng.integers(1, 6, 4_000))
    feature = numeric_drift("pdays", ref_days, cur_days)
    assert close(feature.psi, psi(ref_days, cur_days))
    assert feature.histogram["edges"] == psi_bins(ref_days)[1:-1].tolist()


def test_quantiles_of_a_sorted_sample_equal_np_quantile() -> None:
    rng = np.random.default_rng(16)
    probs = np.r_[np.linspace(0.0, 1.0, 11), 0.25, 0.75, rng.random(20)]
    for n in (1, 2, 3, 7, 10, 11, 101, 1_000, 12_345):
        for values in (
            rng.normal(size=n),
            rng.integers(0, 3, n) * 1.0,
            np.exp(rng.normal(size=n) * 30),
        ):
            f = np.sort(values)
            assert np.array_equal(quantiles_sorted(f, probs), np.quantile(values, probs))
        assert float(np.median(f)) == reference_median(f)


def reference_median(f: np.ndarray) -> float:
    middle = f.size // 2
    return float(f[middle] if f.size % 2 else (f[middle - 1] + f[middle]) / 2)


def test_scale_fallbacks_by_hand() -> None:
    # IQR: 1..8, linear quartiles 2.75 and 6.25 -> 3.5.
    assert reference_scale(np.arange(1.0, 9.0)) == (3.5, "iqr")
    # IQR 0: 7 zeros and 3 ones: quartiles 0 and 0.75 * ... position 6.75 -> 0.75*1?
    # sorted [0]*7 + [1]*3: q1 at 2.25 -> 0, q3 at 6.75 -> 0 + 0.75 * (1 - 0) = 0.75: IQR.
    assert reference_scale(np.array([0.0] * 7 + [1.0] * 3)) == (0.75, "iqr")
    # 8 zeros and 2 ones: q3 at 6.75 -> 0, IQR 0; median 0, MAD 0 (8 of 10 deviations are
    # 0); std: mean 0.2, var 0.2 * 0.8 = 0.16 -> 0.4.
    values = np.array([0.0] * 8 + [1.0, 1.0])
    scale, name = reference_scale(values)
    assert name == "std" and scale == pytest.approx(0.4, rel=1e-15)
    assert reference_scale(np.full(10, 5.0)) == (None, None)


def test_mad_is_zero_whenever_the_linear_iqr_is() -> None:
    # Why the MAD step never fires: an IQR of 0 puts more than half the values at the
    # median. Checked on many mostly-constant samples.
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(2, 60))
        values = np.where(rng.random(n) < rng.uniform(0.3, 0.9), 1.0, rng.normal(size=n))
        q1, q3 = np.percentile(values, [25, 75])
        if q3 - q1 == 0:
            assert stats.median_abs_deviation(values) == 0


def test_wasserstein_normalised_by_std_for_a_mostly_constant_column() -> None:
    ref = np.array([0.0] * 80 + [1.0] * 20)
    cur = np.array([0.0] * 60 + [1.0] * 40)
    feature = numeric_drift("x", ref, cur)
    # W = |0.2 - 0.4| * 1 = 0.2; std of ref = 0.4 -> 0.5
    assert feature.scale_name == "std"
    assert feature.effect == pytest.approx(0.5, rel=1e-12)


def test_constant_reference_is_judged_by_psi() -> None:
    ref = np.zeros(1_000)
    same = numeric_drift("x", ref, np.zeros(500))
    assert same.effect is None and same.status == "ok" and not same.drifted
    moved = numeric_drift("x", ref, np.r_[np.zeros(400), np.ones(100)])
    assert moved.effect is None and moved.psi_level == "major" and moved.drifted


def test_chi_square_and_js_equal_scipy_with_unseen_and_missing_levels() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + [None] * 10
    cur = ["a"] * 40 + ["b"] * 25 + ["d"] * 10 + ["e"] * 5 + [np.nan] * 20
    feature = categorical_drift("cat", ref, cur)
    assert feature.unseen_categories == ["d", "e"]
    assert feature.missing_categories == ["c"]
    # Table: a, b, c, (unseen) [d + e]; "other" is empty and dropped.
    table = np.array([[50, 30, 20, 0], [40, 25, 0, 15]])
    assert feature.histogram["labels"] == ["a", "b", "c", UNSEEN]
    expected = stats.chi2_contingency(table)
    assert close(feature.statistic, expected.statistic)
    assert close(feature.p_value, expected.pvalue)
    shares = table / table.sum(axis=1, keepdims=True)
    assert close(feature.effect, jensenshannon(shares[0], shares[1], base=2))
    assert feature.n_reference == 100 and feature.n_current == 80
    assert feature.missing_reference == pytest.approx(10 / 110)
    assert feature.missing_current == pytest.approx(20 / 100)


def test_two_by_two_table_uses_scipys_yates_correction() -> None:
    ref = [True] * 60 + [False] * 40
    cur = [True] * 45 + [False] * 55
    feature = categorical_drift("flag", np.array(ref), np.array(cur))
    expected = stats.chi2_contingency(np.array([[60, 40], [45, 55]]))  # correction=True
    assert close(feature.statistic, expected.statistic)
    assert close(feature.p_value, expected.pvalue)
    assert feature.histogram["labels"] == ["True", "False"]


def test_ten_thousand_levels_are_capped_to_the_top_levels_and_other() -> None:
    rng = np.random.default_rng(6)
    weights = 1.0 / np.arange(1, 10_001)  # Zipf-like
    levels = np.array([f"L{i:05d}" for i in range(10_000)])
    ref = rng.choice(levels, 100_000, p=weights / weights.sum())
    cur = np.r_[rng.choice(levels, 50_000, p=weights / weights.sum()), ["brand-new"] * 300]
    thresholds = DriftThresholds(max_levels=50)
    feature = categorical_drift("sku", ref, cur, thresholds)
    labels = feature.histogram["labels"]
    counted = pd.Series(ref).value_counts()
    top = counted.iloc[np.lexsort((counted.index.to_numpy(), -counted.to_numpy()))]
    assert labels[:50] == top.index[:50].tolist()  # by reference frequency, ties by label
    assert labels[50:] == [OTHER, UNSEEN]
    # Rare population levels that the reference sample missed are unseen too; the new
    # level is the most frequent of them. The names listed are capped at max_levels.
    cur_series = pd.Series(cur)
    unseen = ~cur_series.isin(set(top.index)).to_numpy()
    assert feature.unseen_categories[0] == "brand-new"
    assert len(feature.unseen_categories) == min(50, np.unique(cur[unseen]).size)
    assert not set(feature.unseen_categories) & set(top.index)
    counts = np.array(
        [
            [*top.iloc[:50].tolist(), top.iloc[50:].sum(), 0],
            [
                *[int(np.sum(cur == level)) for level in labels[:50]],
                int(cur_series.isin(set(top.index[50:])).sum()),
                int(unseen.sum()),
            ],
        ]
    )
    expected = stats.chi2_contingency(counts)
    assert close(feature.p_value, expected.pvalue)
    assert close(feature.statistic, expected.statistic)
    json.dumps(feature.to_json(), allow_nan=False)


def test_benjamini_hochberg_by_hand_and_against_scipy() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # sorted 0.005 0.01 0.03 0.04 0.5 times m/rank = 0.025 0.025 0.05 0.05 0.5, then the
    # running minimum from the top: unchanged here.
    assert benjamini_hochberg(p).tolist() == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    # Monotone step-up: 0.02, 0.021 at m=2: 0.04, 0.021 -> min from the top gives 0.021.
    assert benjamini_hochberg([0.02, 0.021]).tolist() == pytest.approx([0.021, 0.021])
    rng = np.random.default_rng(8)
    many = np.r_[rng.random(40), rng.random(20) * 1e-3]
    assert np.allclose(
        benjamini_hochberg(many), stats.false_discovery_control(many, method="bh"), rtol=1e-12
    )
    assert benjamini_hochberg([]).size == 0
    with pytest.raises(ValueError):
        benjamini_hochberg([0.1, float("nan")])


def test_all_nan_current_column_is_insufficient_data_not_a_crash() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    cur = pd.DataFrame({"x": np.full(200, np.nan), "c": pd.Series([None] * 200, dtype=object)})
    result = data_drift(ref, cur)
    assert not result.drifted and result.drifted_share == 0.0
    for feature in result.features:
        assert feature.status == "insufficient_data" and not feature.drifted
        assert feature.n_current == 0 and feature.missing_current == 1.0
        assert feature.p_value is None and feature.reason
    json.dumps(result.to_json(), allow_nan=False)


def test_column_absent_from_current_and_extra_columns() -> None:
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"x": rng.normal(size=300), "gone": rng.normal(size=300)})
    cur = pd.DataFrame({"x": rng.normal(size=300), "new": rng.normal(size=300)})
    result = data_drift(ref, cur)
    by_name = {f.name: f for f in result.features}
    assert set(by_name) == {"x", "gone"}
    assert by_name["gone"].status == "insufficient_data" and by_name["gone"].n_current == 0
    assert by_name["x"].p_adjusted == by_name["x"].p_value  # BH over one p-value


def test_kinds_by_dtype_and_override() -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "num": rng.normal(size=100),
            "int": rng.integers(0, 9, 100),
            "flag": rng.random(100) < 0.5,
            "text": rng.choice(["a", "b"], 100),
        }
    )
    kinds = {f.name: f.kind for f in data_drift(frame, frame).features}
    assert kinds == {
        "num": "numeric",
        "int": "numeric",
        "flag": "categorical",
        "text": "categorical",
    }
    kinds = {
        f.name: f.kind for f in data_drift(frame, frame, kinds={"int": "categorical"}).features
    }
    assert kinds["int"] == "categorical"


def test_thirty_row_window_of_noise_is_not_flagged() -> None:
    # In a 30-row window the noise alone often reaches the effect threshold (normalised
    # Wasserstein ~ 0.1 on average); the p-value gate keeps the flags to about alpha
    # (here a single test, so no BH; a dataset check adds BH over its features).
    rng = np.random.default_rng(12)
    ref = rng.normal(size=10_000)
    features = [numeric_drift("x", ref, rng.normal(size=30)) for _ in range(400)]
    assert all(f.status != "insufficient_data" for f in features)
    large_effect = sum(f.effect is not None and f.effect >= 0.1 for f in features)
    flagged = sum(f.drifted for f in features)
    assert large_effect > 100  # the effect gate alone would flag noise
    assert flagged <= 30  # 400 x 5% = 20 expected at most; binomial slack
    # and below 29 rows there is no test at all
    small = numeric_drift("x", ref, rng.normal(size=29))
    assert small.status == "insufficient_data" and small.p_value is None


def test_a_trivial_shift_in_a_million_rows_is_not_flagged() -> None:
    rng = np.random.default_rng(13)
    ref, cur = rng.normal(size=1_000_000), rng.normal(0.01, 1.0, 1_000_000)
    feature = numeric_drift("x", ref, cur)
    assert feature.p_value is not None and feature.p_value < 1e-6  # significant ...
    assert feature.effect is not None and feature.effect < 0.02  # ... but tiny
    assert not feature.drifted and feature.status == "ok"
    assert feature.psi_level == "none"


def test_data_drift_orders_flags_and_matches_prepared_reference() -> None:
    rng = np.random.default_rng(14)
    n = 4_000
    ref = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    cur = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(0.5, 1, n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5]),
        }
    )
    result = data_drift(ref, cur)
    names = [f.name for f in result.features]
    assert set(names[:2]) == {"shifted", "cat"} and names[2] == "stable"
    assert result.drifted and result.drifted_share == pytest.approx(2 / 3)
    raw = [f.p_value for f in result.features]
    assert [f.p_adjusted for f in result.features] == pytest.approx(
        benjamini_hochberg(raw).tolist()  # type: ignore[arg-type]
    )
    prepared = data_drift(prepare_reference(ref), cur)
    assert prepared.to_json() == result.to_json()
    json.dumps(result.to_json(), allow_nan=False)


def test_prediction_drift_is_the_numeric_path_on_scores() -> None:
    rng = np.random.default_rng(15)
    ref, cur = rng.beta(2, 5, 5_000), rng.beta(2.6, 5, 5_000)
    feature = prediction_drift(ref, cur)
    d, p, _ = scipy_numeric(ref, cur)
    assert feature.name == "score" and feature.test == "ks"
    assert close(feature.statistic, d) and close(feature.p_value, p)
    assert feature.p_adjusted == feature.p_value
    assert close(feature.psi, psi(ref, cur))
    assert feature.drifted


def test_a_prepared_reference_refuses_other_bins_or_caps() -> None:
    frame = pd.DataFrame({"x": np.arange(100.0)})
    prepared = prepare_reference(frame)
    with pytest.raises(ValueError, match="prepared"):
        data_drift(prepared, frame, thresholds=DriftThresholds(max_levels=10))


def test_a_monitoring_process_loads_the_kernels_in_the_background_as_it_starts() -> None:
    from workers.celery_app import _load_monitoring_kernels
    from workers.monitoring import drift_numeric

    _load_monitoring_kernels()  # what worker_process_init calls in a monitoring pool process
    (loading,) = [t for t in threading.enumerate() if t.name == "load-drift-kernels"]
    assert loading.daemon
    loading.join(timeout=120)
    assert not loading.is_alive()
    assert drift_numeric._sorted_finite_padded.signatures
    assert drift_numeric._ks_wasserstein.signatures


def test_exact_ks_of_equal_sizes_is_scipys_to_the_last_bit() -> None:
    from scipy.stats._stats_py import _compute_prob_outside_square

    from workers.monitoring.drift_numeric import _prob_outside_square

    for n, h in [(1, 1), (10, 3), (37, 1), (37, 36), (1000, 17), (10_000, 150), (10_000, 9_999)]:
        assert _prob_outside_square(n, h) == _compute_prob_outside_square(n, h)
    rng = np.random.default_rng(11)
    for n, shift in [(30, 0.0), (500, 0.3), (10_000, 0.02), (10_000, 0.5)]:
        ref = np.sort(rng.normal(0, 1, n))
        cur = np.sort(np.round(rng.normal(shift, 1, n), 1))  # ties too
        d, _ = ks_wasserstein(ref, cur)
        expected = stats.ks_2samp(ref, cur)
        assert ks_p_value(d, ref, cur) == pytest.approx(
            (expected.statistic, expected.pvalue), rel=1e-12, abs=1e-300
        )

"""Population stability index: bins fixed from the reference, floor smoothing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workers.monitoring.psi import psi, psi_bins


def test_psi_by_hand() -> None:
    # Reference 1..4 (4 distinct values <= 10 bins: one bin per value, edges at midpoints):
    # shares r = [0.25, 0.25, 0.25, 0.25]. Current [1, 1, 2, 4]: c = [0.5, 0.25, 0, 0.25];
    # the empty bin is floored at 1e-4.
    # PSI = (0.5 - 0.25) ln(0.5/0.25) + 0 + (1e-4 - 0.25) ln(1e-4/0.25) + 0
    #     = 0.25 * 0.693147 + (-0.2499) * (-7.824046) = 0.173287 + 1.955229 = 2.128516
    reference, current = np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 2, 4])
    assert psi_bins(reference).tolist() == [-math.inf, 1.5, 2.5, 3.5, math.inf]
    expected = 0.25 * math.log(2) + (1e-4 - 0.25) * math.log(1e-4 / 0.25)
    assert expected == pytest.approx(2.128516, abs=1e-6)
    assert psi(reference, current) == pytest.approx(expected, rel=1e-12)


def test_identical_samples_read_zero_and_psi_is_not_symmetric() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    assert psi(x, x) == 0.0
    shifted = x + 0.5
    assert psi(x, shifted) > 0.1
    assert psi(x, shifted) != pytest.approx(psi(shifted, x))


def test_quantile_bins_for_a_continuous_reference() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=10_000)
    edges = psi_bins(reference)
    assert edges.size == 11 and edges[0] == -math.inf and edges[-1] == math.inf
    assert edges[5] == pytest.approx(np.median(reference))
    # Shares of the reference in its own deciles are 10% each: a same-distribution sample
    # reads small.
    assert psi(reference, rng.normal(size=10_000)) < 0.01


def test_values_outside_the_reference_range_fall_into_the_outer_bins() -> None:
    reference = np.arange(100.0)
    # 100 values above the range all go to the last bin: c = [1e-4 floor ..., 1.0].
    above = psi(reference, np.full(100, 1e6))
    below = psi(reference, np.full(100, -1e6))
    assert above == pytest.approx(below)
    r, c = 0.1, 1e-4
    assert above == pytest.approx((1.0 - r) * math.log(1.0 / r) + 9 * (c - r) * math.log(c / r))


def decile_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI with plain decile edges (duplicates merged), the binning that fails here."""
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, 11))[1:-1])
    shares = [
        np.bincount(np.searchsorted(inner, x, side="right"), minlength=inner.size + 1) / x.size
        for x in (reference, current)
    ]
    r, c = (np.maximum(share, 1e-4) for share in shares)
    return float(np.sum((c - r) * np.log(c / r)))


def pdays_like(rng: np.random.Generator, never: float, days: np.ndarray) -> np.ndarray:
    """-1 ("never contacted") for a share ``never`` of 20,000 rows, else a day count."""
    n = 20_000
    return np.where(rng.random(n) < never, -1.0, rng.choice(days, n))


def test_low_cardinality_bins_see_a_pdays_like_shift() -> None:
    rng = np.random.default_rng(2)
    days = np.array([3.0, 6.0, 9.0, 12.0])
    # 12% of the mass moves from -1 to the day values: -1 drops from 96% to 84%.
    reference, current = pdays_like(rng, 0.96, days), pdays_like(rng, 0.84, days)
    edges = psi_bins(reference)
    assert edges.tolist() == [-math.inf, 1.0, 4.5, 7.5, 10.5, math.inf]  # one bin per value
    # By hand with the expected shares: -1 0.96 -> 0.84, each day 0.01 -> 0.04:
    # -0.12 ln(0.84/0.96) + 4 * 0.03 ln(4) = 0.016024 + 0.166355 = 0.182379
    assert psi(reference, current) == pytest.approx(0.182379, abs=0.02)
    # Every decile of the reference is -1: one bin [-1, inf) holds everything, PSI 0.
    assert decile_psi(reference, current) == 0.0


def test_a_mass_point_gets_its_own_bin_among_many_values() -> None:
    rng = np.random.default_rng(3)
    days = np.arange(1.0, 28.0)  # 27 day counts + -1: quantile bins
    reference, current = pdays_like(rng, 0.96, days), pdays_like(rng, 0.84, days)
    edges = psi_bins(reference)
    assert -1.0 in edges and np.nextafter(-1.0, 0.0) in edges  # [-1, -1+) isolates -1
    assert psi(reference, current) > 0.1
    assert decile_psi(reference, current) == 0.0


def test_a_constant_reference_still_sees_a_change() -> None:
    reference = np.zeros(1000)
    assert psi_bins(reference).size == 4  # below, equal, above
    assert psi(reference, np.zeros(500)) == 0.0
    assert psi(reference, np.r_[np.zeros(400), np.ones(100)]) > 0.25


def test_floor_smoothing_keeps_empty_bins_finite() -> None:
    reference = np.array([0.0] * 50 + [1.0] * 50)
    current = np.zeros(100)  # the second bin empties
    # c = [1.0, floor]; r = [0.5, 0.5]
    for floor in (1e-4, 1e-2):
        expected = 0.5 * math.log(2) + (floor - 0.5) * math.log(floor / 0.5)
        assert psi(reference, current, floor=floor) == pytest.approx(expected)
    assert psi(reference, current, floor=1e-2) < psi(reference, current, floor=1e-4)


def test_nans_are_ignored() -> None:
    reference = np.array([1.0, 2, 3, 4, np.nan])
    current = np.array([np.nan, 1.0, 1, 2, 4, np.nan])
    assert psi(reference, current) == pytest.approx(psi(reference[:4], current[1:5]))


@pytest.mark.parametrize(
    ("reference", "current", "match"),
    [
        (np.array([]), np.array([1.0]), "reference"),
        (np.array([1.0]), np.array([]), "current"),
        (np.array([np.nan, np.nan]), np.array([1.0]), "reference"),
        (np.array([1.0]), np.array([np.nan]), "current"),
    ],
)
def test_empty_samples_are_errors(reference: np.ndarray, current: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        psi(reference, current)


def test_bad_parameters_are_errors() -> None:
    with pytest.raises(ValueError, match="max_bins"):
        psi_bins(np.arange(5.0), max_bins=0)
    with pytest.raises(ValueError, match="floor"):
        psi(np.arange(5.0), np.arange(5.0), floor=0.0)

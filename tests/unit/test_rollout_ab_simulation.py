"""Simulated A/B tests through the real ab_decision, looked at on every tick (small sizes;
``benchmarks/ab_simulation.py`` runs the same code at full size)."""

from __future__ import annotations

import numpy as np
import pytest

from workers.deployment.ab_simulation import (
    Counts,
    bernoulli_sample,
    run_naive,
    run_sequential,
    simulate_counts,
    wilson_interval,
)

ALPHA, MIN_EFFECT, MIN_SAMPLES = 0.05, 0.01, 1000


def simulate(seed: int, p_challenger: float, experiments: int) -> Counts:
    """Ticks of 500 outcomes per arm up to 10,000 per arm, control at 10%."""
    rng = np.random.default_rng(seed)
    return simulate_counts(
        rng,
        p_control=0.1,
        p_challenger=p_challenger,
        experiments=experiments,
        tick=500,
        max_per_arm=10_000,
    )


def test_a_a_false_promotions_stay_below_alpha() -> None:
    counts = simulate(20240601, 0.1, 400)
    summary = run_sequential(counts, alpha=ALPHA, min_effect=MIN_EFFECT, min_samples=MIN_SAMPLES)
    low, high = summary.promote_interval
    print(
        f"A/A: {summary.promoted}/{summary.experiments} false promotions = "
        f"{summary.promote_rate:.2%} (95% Wilson {low:.2%} - {high:.2%})"
    )
    assert summary.promote_rate <= 0.05
    assert high == pytest.approx(wilson_interval(summary.promoted, 400)[1])
    assert high < 0.05  # even the upper bound of the interval is below alpha here
    assert summary.promoted + summary.rejected == 400  # max duration ends every test
    # The same counts with the fixed-sample z-test re-run each tick promote more often.
    naive = run_naive(counts, alpha=ALPHA, min_effect=MIN_EFFECT, min_samples=MIN_SAMPLES)
    assert naive.promote_rate > summary.promote_rate


def test_a_two_point_lift_is_promoted_within_10000_per_arm() -> None:
    counts = simulate(7, 0.12, 200)
    summary = run_sequential(counts, alpha=ALPHA, min_effect=MIN_EFFECT, min_samples=MIN_SAMPLES)
    print(
        f"10% -> 12%: promoted {summary.promote_rate:.1%}, median "
        f"{summary.median_n_to_promote} outcomes per arm"
    )
    assert summary.promote_rate >= 0.80
    assert summary.median_n_to_promote is not None
    assert 1000 <= summary.median_n_to_promote <= 10_000


def test_counts_are_cumulative_per_tick() -> None:
    counts = simulate_counts(
        np.random.default_rng(0),
        p_control=0.3,
        p_challenger=0.6,
        experiments=50,
        tick=400,
        max_per_arm=1000,
    )
    assert counts.n.tolist() == [400, 800, 1000]  # the last tick is partial
    assert counts.control.shape == (50, 3)
    assert (np.diff(counts.control, axis=1) >= 0).all()
    assert (counts.challenger[:, -1] <= 1000).all()
    assert abs(counts.challenger[:, -1].mean() / 1000 - 0.6) < 0.02


def test_bernoulli_sample_matches_the_values() -> None:
    values = np.r_[np.ones(7), np.zeros(13)]
    sample, direct = bernoulli_sample(7, 20), values
    assert sample.mean == pytest.approx(direct.mean())
    assert sample.variance == pytest.approx(direct.var(ddof=1))
    assert bernoulli_sample(1, 1).variance == 0.0 and bernoulli_sample(0, 0).n == 0


def test_wilson_interval() -> None:
    # 20 of 400: p 0.05, z 1.959964, z^2 3.841459; denominator 1 + z^2/400 = 1.009604;
    # centre (0.05 + z^2/800) / 1.009604 = 0.054281;
    # half z sqrt(0.05 * 0.95 / 400 + z^2 / 640000) / 1.009604 = 0.021683
    low, high = wilson_interval(20, 400)
    assert (low, high) == pytest.approx((0.054281 - 0.021683, 0.054281 + 0.021683), abs=1e-6)
    assert wilson_interval(0, 400)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)

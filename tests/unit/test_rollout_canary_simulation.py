"""A canary on simulated traffic, through the real start/evaluate: a worse canary is rolled
back early, an equal one is promoted (benchmarks/canary_simulation.py: 1,000 runs each)."""

from __future__ import annotations

import numpy as np

from workers.deployment.canary_simulation import run_canary, simulate_canary

RUNS = 100


def test_a_worse_canary_is_rolled_back_before_the_50_percent_step() -> None:
    summary = simulate_canary(np.random.default_rng(11), RUNS, p_stable=0.80, p_canary=0.70)
    caught = summary.rolled_back_below(0.5)
    assert caught >= 0.95 * RUNS, [(run.outcome, run.step) for run in summary.runs]
    assert all("metric" in run.breached for run in summary.rollbacks())


def test_an_equal_canary_reaches_100_percent() -> None:
    summary = simulate_canary(np.random.default_rng(12), RUNS, p_stable=0.80, p_canary=0.80)
    assert summary.count("promoted") >= 0.90 * RUNS, [run.breached for run in summary.rollbacks()]
    assert summary.count("unfinished") == 0


def test_a_run_is_reproducible_and_passes_every_step() -> None:
    first = run_canary(np.random.default_rng(5), p_stable=0.8, p_canary=0.8)
    again = run_canary(np.random.default_rng(5), p_stable=0.8, p_canary=0.8)
    assert first == again
    if first.outcome == "promoted":
        assert first.step == 3 and first.share == 1.0
        # 500 canary predictions per step at 5/25/50/100% of 400 requests per tick.
        assert first.canary_predictions >= 4 * 500

"""Simulated A/B tests on conversion outcomes, decided tick by tick: error rates and power.

Shared by ``tests/unit/test_rollout_ab_simulation.py`` (small, in CI) and
``benchmarks/ab_simulation.py`` (full size), so both measure the same code.

Each experiment draws cumulative Bernoulli counts per arm, ``tick`` outcomes per arm per
tick up to ``max_per_arm`` (``rng.binomial`` per tick, then a cumulative sum: no per-row
draws). The counts are then decided on every tick, stopping at the first promote or
reject:

* ``run_sequential``: through the real ``sequential.ab_decision`` (the mSPRT); the maximum
  duration is reached at the last tick, which rejects what is still undecided;
* ``run_naive``: the baseline the product issue implies, a fixed-sample two-proportion
  z-test re-run on every tick (promote when p < alpha and lift >= min effect), or with
  ``every_tick=False`` looked at once, at the last tick (what the z-test is valid for).

Pure: a numpy Generator in, counts, rates and outcomes-needed out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from workers.deployment.rollout_types import MetricSample
from workers.deployment.sequential import SequentialState, ab_decision


@dataclass(frozen=True)
class Counts:
    """Cumulative outcomes of many simulated experiments, tick by tick."""

    n: np.ndarray  # (ticks,) outcomes per arm after each tick
    control: np.ndarray  # (experiments, ticks) cumulative conversions of the control arm
    challenger: np.ndarray  # (experiments, ticks) same for the challenger

    @property
    def experiments(self) -> int:
        return int(self.control.shape[0])


@dataclass(frozen=True)
class Summary:
    """How the experiments ended."""

    method: str
    experiments: int
    promoted: int
    rejected: int
    undecided: int  # still running after the last tick (only without a max duration)
    promote_rate: float
    promote_interval: tuple[float, float]  # 95% Wilson interval of promote_rate
    median_n_to_promote: float | None  # outcomes per arm at promotion, over promoted ones
    decided_n: np.ndarray  # (experiments,) outcomes per arm at the decision; 0 = undecided


def simulate_counts(
    rng: np.random.Generator,
    *,
    p_control: float,
    p_challenger: float,
    experiments: int,
    tick: int = 500,
    max_per_arm: int = 10_000,
) -> Counts:
    """Cumulative conversions per tick (the last tick may be partial to end at the max)."""
    if tick < 1 or max_per_arm < tick:
        raise ValueError(f"need 1 <= tick <= max_per_arm; got {tick}, {max_per_arm}")
    n = np.minimum(np.arange(tick, max_per_arm + tick, tick), max_per_arm)
    n = np.unique(n)
    sizes = np.diff(n, prepend=0)
    shape = (experiments, sizes.size)
    control = np.cumsum(rng.binomial(sizes, p_control, size=shape), axis=1)
    challenger = np.cumsum(rng.binomial(sizes, p_challenger, size=shape), axis=1)
    return Counts(n, control, challenger)


def bernoulli_sample(successes: int, n: int) -> MetricSample:
    """The mean and sample variance (ddof=1) of ``n`` 0/1 outcomes with ``successes`` ones."""
    if n == 0:
        return MetricSample.empty()
    variance = successes * (n - successes) / (n * (n - 1)) if n > 1 else 0.0
    return MetricSample(n, successes / n, variance)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ((0, 1) when n == 0)."""
    if n == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Exact ends at 0 and n (the formula leaves rounding dust there).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def summarise(method: str, actions: list[str], decided_n: np.ndarray) -> Summary:
    experiments = len(actions)
    promoted = actions.count("promote")
    rejected = actions.count("reject")
    at_promotion = decided_n[np.array([a == "promote" for a in actions], dtype=bool)]
    median = float(np.median(at_promotion)) if at_promotion.size else None
    return Summary(
        method=method,
        experiments=experiments,
        promoted=promoted,
        rejected=rejected,
        undecided=experiments - promoted - rejected,
        promote_rate=promoted / experiments if experiments else 0.0,
        promote_interval=wilson_interval(promoted, experiments),
        median_n_to_promote=median,
        decided_n=decided_n,
    )


def _decide_one(
    counts: Counts, row: int, *, alpha: float, min_effect: float, min_samples: int
) -> tuple[str, int]:
    """One experiment through ``ab_decision``, tick by tick, until it promotes or rejects."""
    state = SequentialState()
    ticks = counts.n.size
    for t in range(ticks):
        n = int(counts.n[t])
        decision = ab_decision(
            bernoulli_sample(int(counts.control[row, t]), n),
            bernoulli_sample(int(counts.challenger[row, t]), n),
            alpha=alpha,
            min_effect=min_effect,
            min_samples=min_samples,
            elapsed_s=float(t + 1),
            max_duration_s=float(ticks),  # reached at the last tick
            previous=state,
        )
        if decision.action != "extend":
            return decision.action, n
        state = decision.state
    return "extend", 0


def run_sequential(counts: Counts, *, alpha: float, min_effect: float, min_samples: int) -> Summary:
    """Every experiment decided by the real ``ab_decision`` on every tick."""
    actions: list[str] = []
    decided = np.zeros(counts.experiments, dtype=np.int64)
    for row in range(counts.experiments):
        action, n = _decide_one(
            counts, row, alpha=alpha, min_effect=min_effect, min_samples=min_samples
        )
        actions.append(action)
        decided[row] = n
    return summarise("mSPRT (ab_decision)", actions, decided)


def run_naive(
    counts: Counts,
    *,
    alpha: float,
    min_effect: float,
    min_samples: int,
    every_tick: bool = True,
) -> Summary:
    """Fixed-sample two-proportion z-test (pooled): promote at the first tick with
    p < alpha and lift >= min_effect; reject at the last tick otherwise. ``every_tick=False``
    looks only at the last tick."""
    n = counts.n.astype(np.float64)
    p_a, p_b = counts.control / n, counts.challenger / n
    pooled = (counts.control + counts.challenger) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * 2 / n)
    lift = p_b - p_a
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, lift / se, 0.0)
    p_value = 2 * stats.norm.sf(np.abs(z))
    looks = counts.n >= min_samples
    if not every_tick:
        looks = looks & (np.arange(n.size) == n.size - 1)
    promote = (p_value < alpha) & (lift >= min_effect) & looks[np.newaxis, :]
    any_promote = promote.any(axis=1)
    first = promote.argmax(axis=1)
    actions = ["promote" if hit else "reject" for hit in any_promote]
    decided = np.where(any_promote, counts.n[first], counts.n[-1]).astype(np.int64)
    label = "naive z-test, every tick" if every_tick else "z-test, one look at the end"
    return summarise(label, actions, decided)

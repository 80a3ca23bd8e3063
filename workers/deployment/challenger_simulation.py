"""Seeded champion/challenger simulations: how often ``challenger.decide`` gets it right.

Shared by ``tests/unit/test_challenger.py`` (small) and ``benchmarks/challenger_simulation.py``
(full size), so both measure the same code. Each run draws a fresh window of ``n`` recent
labelled rows and decides it; a hit is the verdict the scenario calls for:

==================  ==========================================================  ========
scenario            data                                                        hit
==================  ==========================================================  ========
binary_better       z ~ N(0, 1), y ~ Bernoulli(sigmoid(2z - 2.23)) (base rate   promote
                    ≈ 0.20); scores z + N(0, 1.1²) vs z + N(0, 0.7²): ROC AUC
                    ≈ 0.75 vs 0.80 (population values)
binary_equal        both scores z + N(0, 1.1²), independent noises (AUC ≈ 0.75)  reject
regression_better   y = f(x) + N(0, 1); predictions f(x) + N(0, 0.75²) vs        promote
                    f(x) + N(0, 0.515²): RMSE 1.25 vs 1.125 (ratio 0.90)
regression_equal    both f(x) + N(0, 0.75²), independent errors (RMSE 1.25)      reject
==================  ==========================================================  ========

Pure: every draw from a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from workers.deployment.challenger import Problem, Verdict, decide
from workers.monitoring.drift_simulation import wilson_interval

LOGIT_SLOPE, LOGIT_INTERCEPT = 2.0, -2.23  # base rate 0.20; AUC of z itself ≈ 0.87
SIGMA_BINARY = {"champion": 1.1, "challenger": 0.7}  # population AUC 0.749 vs 0.804
SIGMA_REGRESSION = {"champion": 0.75, "challenger": 0.515}  # RMSE 1.25 vs 1.125
SCENARIOS: dict[str, tuple[Problem, bool, Verdict]] = {
    # name: (problem, challenger truly better, the right verdict)
    "binary_better": ("binary", True, "promote"),
    "binary_equal": ("binary", False, "reject"),
    "regression_better": ("regression", True, "promote"),
    "regression_equal": ("regression", False, "reject"),
}


@dataclass(frozen=True)
class Summary:
    """How often the right verdict came out, with its 95% Wilson interval."""

    hits: int
    runs: int
    rate: float
    wilson_low: float
    wilson_high: float
    scenario: str = ""
    verdict: str = ""  # the verdict counted as a hit
    champion: float = float("nan")  # mean observed metric over the runs
    challenger: float = float("nan")
    # The baseline: promote whenever the challenger's point estimate is better (what a
    # "compare on the holdout" step does): its share of right verdicts on the same windows.
    naive_rate: float = float("nan")


def sample(
    scenario: str, n: int, rng: np.random.Generator
) -> tuple[Problem, np.ndarray, np.ndarray, np.ndarray]:
    """One window: (problem, y, champion predictions, challenger predictions)."""
    problem, better, _ = SCENARIOS[scenario]
    sigmas = SIGMA_BINARY if problem == "binary" else SIGMA_REGRESSION
    sigma_champion = sigmas["champion"]
    sigma_challenger = sigmas["challenger"] if better else sigma_champion
    if problem == "binary":
        signal = rng.standard_normal(n)
        y = (rng.random(n) < expit(LOGIT_SLOPE * signal + LOGIT_INTERCEPT)).astype(np.int64)
    else:
        x = rng.uniform(-2.0, 2.0, size=(n, 3))
        signal = 3 + 2 * x[:, 0] - x[:, 1] ** 2 + np.sin(3 * x[:, 2])
        y = signal + rng.standard_normal(n)
    champion = signal + sigma_champion * rng.standard_normal(n)
    challenger = signal + sigma_challenger * rng.standard_normal(n)
    return problem, y, champion, challenger


def simulate(
    scenario: str, runs: int, n: int = 2000, seed: int = 0, *, alpha: float = 0.05
) -> Summary:
    """Decide ``runs`` fresh windows of ``n`` rows; count the verdicts the scenario calls for."""
    _, _, wanted = SCENARIOS[scenario]
    rng = np.random.default_rng(seed)
    hits, naive, champion, challenger = 0, 0, 0.0, 0.0
    for _ in range(runs):
        problem, y, a, b = sample(scenario, n, rng)
        decision = decide(problem, y, a, b, alpha=alpha, seed=int(rng.integers(2**31)))
        hits += decision.verdict == wanted
        naive += ((decision.improvement or 0.0) > 0) == (wanted == "promote")
        champion += decision.champion or 0.0
        challenger += decision.challenger or 0.0
    low, high = wilson_interval(hits, runs)
    return Summary(
        hits, runs, hits / runs if runs else 0.0, low, high, scenario, wanted,
        champion / runs if runs else float("nan"), challenger / runs if runs else float("nan"),
        naive / runs if runs else float("nan"),
    )  # fmt: skip

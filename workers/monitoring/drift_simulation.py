"""Seeded synthetic populations to calibrate the drift detector (false alarms and power).

A ``Population`` is a fixed mix of feature shapes that real customer tables have: normal,
log-normal (skewed), Poisson counts (ties), a mostly constant "days since" column (-1 for
85% of rows, like bank marketing's ``pdays``), uniform, and categoricals with skewed
level shares, including a rare level. ``sample`` draws a window; ``mean_shift`` and
``share_shift`` move one feature. The windows are independent draws, so a detector that
is calibrated raises a dataset-level alarm on at most ``alpha`` of the no-drift windows.

``alarm_rate`` runs the detector over many windows against one prepared reference and
returns the count of alarms (dataset-level, or for one feature: the false alarm rate on
no-drift windows, the power on shifted ones) with its Wilson score interval. Used by
``tests/unit/test_drift_calibration.py`` (small) and ``benchmarks/drift_speed.py`` (full
size). Pure: no I/O, every draw from a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workers.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    DriftThresholds,
    PreparedReference,
    data_drift,
)

NUMERIC_SHAPES = ("normal", "lognormal", "poisson", "days_since", "uniform")
# Level shares of the categoricals, by position; the first has a rare level (3%).
CATEGORY_SHARES = (
    (0.40, 0.30, 0.15, 0.12, 0.03),
    (0.5, 0.3, 0.2),
    (0.25, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.04, 0.03, 0.02, 0.01),
    (0.7, 0.3),
)


@dataclass(frozen=True)
class Population:
    """``n_numeric`` numeric features cycling through ``NUMERIC_SHAPES`` and
    ``n_categorical`` categoricals cycling through ``CATEGORY_SHARES``; optionally one
    numeric feature's mean shifted by ``shift_sigmas`` of its standard deviation and one
    categorical level's share moved by ``share_points`` (taken from the other levels in
    proportion to their shares)."""

    n_numeric: int = 24
    n_categorical: int = 6
    shifted_numeric: str | None = None
    shift_sigmas: float = 0.0
    shifted_category: tuple[str, str] | None = None  # (feature, level)
    share_points: float = 0.0

    @property
    def numeric_names(self) -> list[str]:
        return [
            f"n{i:02d}_{NUMERIC_SHAPES[i % len(NUMERIC_SHAPES)]}" for i in range(self.n_numeric)
        ]

    @property
    def categorical_names(self) -> list[str]:
        return [f"c{i:02d}" for i in range(self.n_categorical)]

    def shares(self, name: str) -> tuple[list[str], np.ndarray]:
        """Level names and shares of a categorical (after any share shift)."""
        index = int(name[1:])
        base = np.array(CATEGORY_SHARES[index % len(CATEGORY_SHARES)], dtype=np.float64)
        levels = [f"{name}_L{k}" for k in range(base.size)]
        if self.shifted_category is not None and self.shifted_category[0] == name:
            target = levels.index(self.shifted_category[1])
            moved = base.copy()
            others = np.arange(base.size) != target
            moved[others] -= self.share_points * base[others] / base[others].sum()
            moved[target] += self.share_points
            if np.any(moved < 0):
                raise ValueError("share shift larger than the other levels' mass")
            base = moved
        return levels, base

    def _numeric(self, rng: np.random.Generator, i: int, n: int) -> tuple[np.ndarray, float]:
        """(values, population standard deviation) of numeric feature i."""
        shape = NUMERIC_SHAPES[i % len(NUMERIC_SHAPES)]
        if shape == "normal":
            return rng.normal(10.0, 2.0, n), 2.0
        if shape == "lognormal":
            return rng.lognormal(0.0, 1.0, n), math.sqrt((math.e - 1) * math.e)
        if shape == "poisson":
            return rng.poisson(3.0, n).astype(np.float64), math.sqrt(3.0)
        if shape == "days_since":
            never = rng.random(n) < 0.85
            days = rng.integers(1, 400, n).astype(np.float64)
            values = np.where(never, -1.0, days)
            mean_days, var_days = 200.0, (399**2 - 1) / 12
            mean = 0.85 * -1 + 0.15 * mean_days
            var = 0.85 * 1 + 0.15 * (var_days + mean_days**2) - mean**2
            return values, math.sqrt(var)
        return rng.uniform(0.0, 1.0, n), math.sqrt(1 / 12)

    def sample(self, rng: np.random.Generator, n: int) -> pd.DataFrame:
        """A window of ``n`` rows."""
        columns: dict[str, object] = {}
        for i, name in enumerate(self.numeric_names):
            values, sigma = self._numeric(rng, i, n)
            if name == self.shifted_numeric:
                values = values + self.shift_sigmas * sigma
            columns[name] = values
        for name in self.categorical_names:
            levels, shares = self.shares(name)
            codes = rng.choice(len(levels), size=n, p=shares)
            columns[name] = pd.Categorical.from_codes(codes, categories=levels)
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class Rate:
    """``hits`` out of ``trials`` with a 95% Wilson score interval."""

    hits: int
    trials: int

    @property
    def rate(self) -> float:
        return self.hits / self.trials if self.trials else math.nan

    @property
    def wilson(self) -> tuple[float, float]:
        return wilson_interval(self.hits, self.trials)

    def __str__(self) -> str:
        low, high = self.wilson
        return f"{self.hits}/{self.trials} = {self.rate:.3f} (95% Wilson {low:.3f}-{high:.3f})"


def wilson_interval(hits: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default)."""
    if trials == 0:
        return 0.0, 1.0
    p = hits / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def alarm_rate(
    reference: PreparedReference,
    population: Population,
    rng: np.random.Generator,
    *,
    windows: int,
    window_rows: int,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
    feature: str | None = None,
) -> Rate:
    """Share of ``windows`` fresh windows of ``population`` in which the detector raises a
    dataset-level alarm (``feature`` None) or flags ``feature``."""
    hits = 0
    for _ in range(windows):
        result = data_drift(reference, population.sample(rng, window_rows), thresholds=thresholds)
        if feature is None:
            hits += result.drifted
        else:
            hits += any(f.drifted and f.name == feature for f in result.features)
    return Rate(hits, windows)

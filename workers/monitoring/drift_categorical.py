"""Categorical drift statistics: level counts, top-level capping, the 2 x k table.

How the levels enter the comparison (one column of the 2 x k table per entry):

* **kept levels**: the ``max_levels`` most frequent reference levels (default 50; ties by
  label), each a column of its own, in that order;
* ``OTHER``: every other reference level, pooled (a 10,000-level column compares its top
  50 levels and one "other" column; only the capped list is kept in the prepared
  reference's columns, the full set of names is kept to tell "other" from "unseen");
* ``UNSEEN``: current values whose level never occurs in the reference, pooled into one
  column; their names are reported (most frequent first, at most ``max_levels`` of them);
* a kept level with no current rows ("missing now") keeps its column (count 0 in the
  current row) and is listed in ``missing_categories``;
* columns whose total is 0 (a level absent from both rows cannot happen; "other" or
  "unseen" can be empty) are dropped so that every expected count is positive and the
  test is defined.

The chi-square test is ``scipy.stats.chi2_contingency`` on exactly that table (its default
``correction=True`` means Yates' correction when the table is 2 x 2, i.e. 1 degree of
freedom, and none otherwise); a table with one column left (both samples entirely in one
level) has statistic 0 and p-value 1. The effect size is the Jensen-Shannon distance
(``scipy.spatial.distance.jensenshannon``, base 2, so in [0, 1]) between the two rows'
shares over the same columns; PSI uses the same columns as bins.

Missing values (None, NaN, pd.NA) are not a level: they count towards the missing share.
Labels are compared as strings (``str(label)``), so a bool column has levels "True" and
"False".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

DEFAULT_MAX_LEVELS = 50
OTHER = "(other)"
UNSEEN = "(unseen)"


def level_counts(values: Sequence[Any] | np.ndarray | pd.Series) -> tuple[pd.Series, int]:
    """(counts per level as strings, most frequent first; number of rows incl. missing)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]  # unused categories of a Categorical
    counts.index = pd.Index([str(label) for label in counts.index], dtype=object)
    if counts.index.has_duplicates:  # e.g. 1 and "1"
        counts = counts.groupby(level=0).sum()
    return counts.astype(np.int64), len(series)


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """What a categorical check needs from the reference, computed once (cacheable)."""

    levels: tuple[str, ...]  # the kept levels, most frequent first
    counts: np.ndarray  # reference count of each kept level
    other_count: int  # reference rows in the other (pooled) levels
    other_levels: frozenset[str]
    n_total: int  # rows, missing included

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + self.other_count

    @property
    def missing_share(self) -> float:
        return 0.0 if self.n_total == 0 else 1.0 - self.n / self.n_total


def prepare_categorical(
    values: Sequence[Any] | np.ndarray | pd.Series, max_levels: int = DEFAULT_MAX_LEVELS
) -> CategoricalReference:
    """Count the reference levels and keep the ``max_levels`` most frequent."""
    if max_levels < 1:
        raise ValueError(f"max_levels must be at least 1; got {max_levels}")
    counts, n_total = level_counts(values)
    # Most frequent first, ties by label: deterministic whatever the input order.
    ordered = sorted(counts.items(), key=lambda item: (-int(item[1]), item[0]))
    kept, rest = ordered[:max_levels], ordered[max_levels:]
    return CategoricalReference(
        levels=tuple(label for label, _ in kept),
        counts=np.array([count for _, count in kept], dtype=np.int64),
        other_count=int(sum(count for _, count in rest)),
        other_levels=frozenset(label for label, _ in rest),
        n_total=n_total,
    )


@dataclass(frozen=True, eq=False)
class CategoricalStats:
    """The 2 x k comparison of a current window with a prepared reference."""

    labels: list[str]  # columns of the table (zero-total columns dropped)
    reference_counts: np.ndarray
    current_counts: np.ndarray
    unseen: list[str]  # current levels absent from the reference, most frequent first
    missing: list[str]  # kept reference levels with no current rows
    n_current: int  # non-missing current rows
    n_current_total: int


def compare_categorical(
    reference: CategoricalReference,
    current: Sequence[Any] | np.ndarray | pd.Series,
    max_listed: int = DEFAULT_MAX_LEVELS,
) -> CategoricalStats:
    """Build the table of the module docstring (the statistics are left to the caller)."""
    counts, n_total = level_counts(current)
    current_map = {str(label): int(count) for label, count in counts.items()}
    kept = np.array([current_map.pop(level, 0) for level in reference.levels], dtype=np.int64)
    other = sum(
        current_map.pop(level) for level in list(current_map) if level in reference.other_levels
    )
    unseen_items = sorted(current_map.items(), key=lambda item: (-item[1], item[0]))
    unseen_count = sum(count for _, count in unseen_items)
    labels = [*reference.levels, OTHER, UNSEEN]
    ref_row = np.concatenate((reference.counts, [reference.other_count, 0]))
    cur_row = np.concatenate((kept, [other, unseen_count]))
    keep = (ref_row + cur_row) > 0
    return CategoricalStats(
        labels=[label for label, k in zip(labels, keep, strict=True) if k],
        reference_counts=ref_row[keep],
        current_counts=cur_row[keep],
        unseen=[label for label, _ in unseen_items[:max_listed]],
        missing=[level for level, count in zip(reference.levels, kept, strict=True) if count == 0],
        n_current=int(cur_row.sum()),
        n_current_total=n_total,
    )


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of ``scipy.stats.chi2_contingency`` on the 2 x k table; (0, 1)
    for a single column."""
    if reference_counts.size < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(np.vstack((reference_counts, current_counts)))
    return float(result.statistic), float(result.pvalue)


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2) between the two rows' shares."""
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    return float(jensenshannon(p, q, base=2))

"""Population stability index (PSI) of a current sample against a reference sample.

``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` over bins fixed from the reference, where
``r_i`` and ``c_i`` are the shares of the reference and current values in bin ``i``. Rules
of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.

Bins (``psi_bins``):

* **quantile edges** of the reference (at most ``max_bins`` bins, duplicate edges merged);
* **one bin per value** when the reference has <= ``max_bins`` distinct values. Quantile
  edges fail on low-cardinality or mostly constant columns: a ``pdays``-like column that
  is -1 for 96% of rows has all its deciles at -1, so everything lands in one bin and a
  12-point shift of mass away from -1 reads 0. Edges are then the midpoints between
  consecutive distinct values. A constant reference gets three bins (below, equal, above)
  so that a current sample that stops being constant still shows.
* with more distinct values, a quantile edge whose value holds at least ``1/max_bins`` of
  the reference (a mass point) also gets a bin of its own, for the same reason.

The outer edges are -inf and +inf: values outside the reference's range fall into the
first or last bin. Bins are half-open, ``[edge_i, edge_i+1)``.

Smoothing: a bin with no values would make ``ln(c/r)`` infinite, so shares below ``floor``
(default 1e-4) are raised to ``floor`` before the sum. The shares are not renormalised; the
bias is at most ``floor`` per bin, negligible against the 0.1 / 0.25 thresholds, while a
bin that empties or fills from nothing still contributes a large, finite term.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_BINS = 10
DEFAULT_FLOOR = 1e-4


def _without_nan(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError(f"PSI needs a non-empty {name} sample (NaNs are ignored)")
    return values


def _inner_edges(reference: np.ndarray, max_bins: int) -> np.ndarray:
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.empty(0)
    distinct = np.unique(finite)
    if distinct.size == 1:
        # Below, equal to, above the single value.
        value = distinct[0]
        return np.array([value, np.nextafter(value, math.inf)])
    if distinct.size <= max_bins:
        # Midpoints, written so that large values do not overflow.
        return distinct[:-1] + (distinct[1:] - distinct[:-1]) / 2
    quantiles = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, max_bins + 1))[1:-1])
    # A value holding a bin's worth of the reference (a mass point, e.g. -1 for "never")
    # gets a bin of its own, [v, next float after v): otherwise it shares its bin with the
    # values above it and a shift between the two is invisible.
    heavy = [v for v in quantiles if np.count_nonzero(finite == v) >= finite.size / max_bins]
    isolated = np.nextafter(np.asarray(heavy, dtype=np.float64), math.inf)
    return np.unique(np.concatenate((quantiles, isolated)))


def psi_bins(reference: np.ndarray, max_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin edges fixed from the reference, from -inf to +inf (see the module docstring).

    NaNs are ignored; infinite values do not move the edges (they fall into the outer bins).
    """
    if max_bins < 1:
        raise ValueError(f"max_bins must be at least 1; got {max_bins}")
    inner = _inner_edges(_without_nan(reference, "reference"), max_bins)
    return np.concatenate(([-math.inf], inner, [math.inf]))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin ``[edge_i, edge_i+1)`` (outer bins open-ended)."""
    index = np.searchsorted(edges[1:-1], values, side="right")
    counts = np.bincount(index, minlength=edges.size - 1)
    return counts / values.size


def psi(
    reference: np.ndarray,
    current: np.ndarray,
    max_bins: int = DEFAULT_BINS,
    floor: float = DEFAULT_FLOOR,
) -> float:
    """PSI of ``current`` against ``reference`` (NaNs ignored; ValueError when either is
    empty); shares below ``floor`` are raised to it (see the module docstring)."""
    if not floor > 0:
        raise ValueError(f"floor must be positive; got {floor}")
    ref = _without_nan(reference, "reference")
    cur = _without_nan(current, "current")
    edges = psi_bins(ref, max_bins)
    r = np.maximum(bin_shares(ref, edges), floor)
    c = np.maximum(bin_shares(cur, edges), floor)
    return float(np.sum((c - r) * np.log(c / r)))

"""Window features per (customer, cutoff) over the half-open windows [cutoff - w, cutoff):
``events__count__<w>``, ``<v>__{sum,mean,std,min,max}__<w>`` and ``<c>__share__<x>__<w>``,
defined (with their null rules) in aggregates.py.

How. Windows ending at the same cutoff are nested, so the rows [start of the longest, cutoff)
are cut at each window's start into disjoint pieces, reduced once per pair (one
``np.ufunc.reduceat`` per statistic for all windows) and accumulated from the shortest
window outwards. Only the window's own rows are read: a customer's numbers never depend on
other customers or on later events. The std is the textbook formula on values shifted by the
customer's first value (0 when null), which removes the cancellation of a common level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workers.preprocessing.features.event_rows import (
    EventRows,
    Floats,
    Ints,
    Pieces,
    prefix,
    range_count,
    ratio,
    zeroed,
)

Column = Floats | Ints


@dataclass(frozen=True)
class ValueColumn:
    """A value column, prepared once for every window and cutoff."""

    padded: Floats  # NaN for null, plus a NaN row (see event_rows.padded_floats)
    zeroed: Floats  # null as 0, for sums
    shifted: Floats  # minus the customer's first value (0 when null); null as 0
    present: Ints  # running count of non-null values (see event_rows.prefix)

    @classmethod
    def of(cls, rows: EventRows, padded: Floats) -> ValueColumn:
        summed = zeroed(padded)
        shifted = summed.copy()
        shifted[:-1] -= summed[rows.starts][rows.code]
        shifted[np.isnan(padded)] = 0.0
        return cls(padded, summed, shifted, prefix(~np.isnan(padded[:-1])))


def window_features(
    windows: Sequence[tuple[str, int]],
    starts: Sequence[Ints],
    end: Ints,
    values: Mapping[str, ValueColumn],
    raw_rows: Ints,
    categories: Mapping[tuple[str, str], Ints],
) -> dict[str, Column]:
    """Columns of every window, in the order of ``windows`` ((name, days) pairs).
    ``starts[i]``: each pair's first row in window i; ``end``: the row after each pair's last
    event before the cutoff; ``raw_rows``, ``categories`` (per (column, value)): running
    totals of raw rows (``prefix``)."""
    if not windows:
        return {}
    # Longest window first: bounds along a pair's row are then non-decreasing.
    outward = sorted(range(len(windows)), key=lambda i: -windows[i][1])
    pieces = Pieces(np.stack([starts[i] for i in outward] + [end], axis=1))
    stats = {name: _value_stats(value, pieces) for name, value in values.items()}
    out: dict[str, Column] = {}
    for i, (window, _) in enumerate(windows):
        lo, piece = starts[i], outward.index(i)
        out[f"events__count__{window}"] = end - lo
        for name, by_stat in stats.items():
            out.update({f"{name}__{stat}__{window}": rows[piece] for stat, rows in by_stat.items()})
        raw = range_count(raw_rows, lo, end)
        for (column_name, value), counts in categories.items():
            share = ratio(range_count(counts, lo, end).astype(np.float64), raw)
            out[f"{column_name}__share__{value}__{window}"] = share
    return out


def _value_stats(value: ValueColumn, pieces: Pieces) -> dict[str, Floats]:
    """Per statistic, shape (windows, pairs): row j is the window made of pieces j, j + 1, ...
    up to the cutoff (longest window first)."""
    n = value.present[pieces.hi[-1]] - value.present[pieces.lo]
    total = _inward(np.add, pieces.reduce(np.add, value.zeroed, 0.0))
    s1 = _inward(np.add, pieces.reduce(np.add, value.shifted, 0.0))
    s2 = _inward(np.add, pieces.reduce(np.add, value.shifted * value.shifted, 0.0))
    low = _inward(np.fmin, pieces.reduce(np.fmin, value.padded, np.nan))
    high = _inward(np.fmax, pieces.reduce(np.fmax, value.padded, np.nan))
    count = n.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.maximum((s2 - s1 * s1 / count) / (count - 1), 0.0)
    return {
        "sum": total,
        "mean": ratio(total, n),
        "std": np.where(n >= 2, np.sqrt(var), np.nan),
        "min": low,
        "max": high,
    }


def _inward(ufunc: np.ufunc, pieces: Floats) -> Floats:
    """In place: row j combines pieces j..last (the innermost piece ends at the cutoff)."""
    for j in range(pieces.shape[0] - 2, -1, -1):
        ufunc(pieces[j + 1], pieces[j], out=pieces[j])
    return pieces

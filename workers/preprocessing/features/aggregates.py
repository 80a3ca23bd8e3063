"""Per-customer features as of each cutoff, from the prepared event frame (see spec.py).

Rows: one per (customer, cutoff) for every customer with at least one event strictly before
the cutoff, sorted by (cutoff, customer_id); columns ``customer_id``, ``cutoff``
(Datetime "us") then the features below, in this order. An event counts for cutoff t only
when its ts < t: nothing at or after the cutoff is read. "Events" are merged events (one per
customer and timestamp); ``n_events`` counts the raw rows merged into each.

Recency, frequency, monetary (all events before the cutoff):
- ``days_since_last_event``, ``days_since_first_event``: cutoff - ts, in days (float).
- ``frequency``: events; ``raw_event_count``: raw rows (sum of n_events). Int64.
- ``<v>__sum``: sum of the non-null values (0.0 when all are null); ``<v>__mean``: that sum
  over the events with a non-null value (null when there is none).

Lags: see lags.py (``<v>__lag_<k>`` for every value column, then
``days_between_events__lag_<k>``).

Windows, half-open [cutoff - w, cutoff) (an event exactly at cutoff - w is in, one at the
cutoff is out), for each window in ``spec.windows`` (``<w>`` as written, e.g. ``30D``):
- ``events__count__<w>`` (Int64): events in the window.
- ``<v>__sum__<w>``: sum of the non-null values, 0.0 for an empty window.
- ``<v>__mean__<w>``, ``<v>__min__<w>``, ``<v>__max__<w>``: over the non-null values; null
  when there is none. ``<v>__std__<w>``: sample standard deviation (ddof = 1), null with
  fewer than 2 non-null values.
- ``<c>__share__<x>__<w>``: raw rows with category value x / raw rows in the window, for each
  category column c and each value x of ``spec.category_values[c]``; null when the window
  has no events (a share of nothing is undefined, not 0). A count column missing from the
  frame counts 0 rows.

NaN values are read as null. The std is the textbook formula on values shifted by the
customer's first value (removes the cancellation of a large common level); min, max and sums
are reduced over the window's own rows only, so a customer's features never depend on other
customers or on later events. Cost: O(rows + pairs + sum of window lengths), no Python loop
over customers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import polars as pl

from workers.preprocessing.features.event_rows import (
    DAY_US,
    EventRows,
    Floats,
    Ints,
    Pairs,
    TimeSearch,
    cutoff_micros,
    cutoff_pairs,
    event_rows,
    int_column,
    padded_floats,
    prefix,
    range_count,
    range_reduce,
    ratio,
)
from workers.preprocessing.features.lags import lag_features
from workers.preprocessing.features.spec import CATEGORY_SEP, CUSTOMER, N_EVENTS, FeatureSpec
from workers.preprocessing.features.windows import Column, ValueColumn, window_features


def cutoff_aggregates(
    events: pl.DataFrame, cutoffs: Sequence[datetime], spec: FeatureSpec
) -> pl.DataFrame:
    """RFM, lag and window features per (customer, cutoff); see the module docstring."""
    rows = event_rows(events)
    times = cutoff_micros(cutoffs)
    window_us = [days * DAY_US for _, days in spec.windows]
    search = TimeSearch(rows, np.concatenate([times, *(times - us for us in window_us)]))
    pairs = cutoff_pairs(rows, times, search)
    values = {v: ValueColumn.of(rows, padded_floats(rows.frame, v)) for v in spec.value_columns}
    raw_rows = prefix(int_column(rows.frame, N_EVENTS))

    columns: dict[str, Column] = {}
    columns.update(_recency(rows, pairs, values, raw_rows))
    padded = {name: value.padded for name, value in values.items()}
    columns.update(lag_features(rows, pairs, padded, spec.lag_periods))
    starts = [search.end(pairs.customer, pairs.cutoff - us) for us in window_us]
    categories = {
        (column, value): prefix(int_column(rows.frame, f"{column}{CATEGORY_SEP}{value}"))
        for column in spec.category_columns
        for value in spec.category_values.get(column, ())
    }
    columns.update(window_features(spec.windows, starts, pairs.end, values, raw_rows, categories))
    return _assemble(rows, pairs, columns)


def _recency(
    rows: EventRows, pairs: Pairs, values: Mapping[str, ValueColumn], raw_rows: Ints
) -> dict[str, Column]:
    out: dict[str, Column] = {
        "days_since_last_event": (pairs.cutoff - rows.ts[pairs.end - 1]) / DAY_US,
        "days_since_first_event": (pairs.cutoff - rows.ts[pairs.start]) / DAY_US,
        "frequency": pairs.end - pairs.start,
        "raw_event_count": range_count(raw_rows, pairs.start, pairs.end),
    }
    for name, value in values.items():
        total = _running_sum(pairs, value.zeroed)
        out[f"{name}__sum"] = total
        out[f"{name}__mean"] = ratio(total, range_count(value.present, pairs.start, pairs.end))
    return out


def _running_sum(pairs: Pairs, zeroed: Floats) -> Floats:
    """Sum over [start, end) of each pair, as running totals of the stretches between a
    customer's consecutive cutoffs: O(rows + pairs) however many cutoffs there are."""
    index = np.arange(pairs.size)
    first = np.ones(pairs.size, dtype=bool)
    first[1:] = pairs.customer[1:] != pairs.customer[:-1]
    lo = np.where(first, pairs.start, np.roll(pairs.end, 1))
    total = range_reduce(np.add, zeroed, lo, pairs.end, 0.0)
    rank = index - np.maximum.accumulate(np.where(first, index, 0))
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(1, int(rank.max(initial=0)) + 1))
    for at in np.split(by_rank, bounds)[1:]:
        total[at] += total[at - 1]  # rank r after rank r - 1: same customer, one cutoff back
    return total


def _assemble(rows: EventRows, pairs: Pairs, columns: Mapping[str, Column]) -> pl.DataFrame:
    # Pairs are in row order (customer, cutoff); a stable sort by cutoff gives (cutoff,
    # customer_id) because customer numbers follow customer_id order.
    order = np.argsort(pairs.cutoff, kind="stable")
    keys = [
        rows.customers.gather(pairs.customer[order]).alias(CUSTOMER),
        pl.Series("cutoff", pairs.cutoff[order], dtype=pl.Int64).cast(pl.Datetime("us")),
    ]
    features = [
        pl.Series(name, values[order], nan_to_null=values.dtype.kind == "f")
        for name, values in columns.items()
    ]
    return pl.DataFrame([*keys, *features])

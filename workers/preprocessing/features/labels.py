"""Labels per (customer, cutoff), from the customer's events in the half-open horizon
[cutoff, cutoff + horizon) only: an event exactly at the cutoff is in, one exactly at
cutoff + horizon is out, and nothing before the cutoff is read.

- churn (Int8): 1 when the customer has no event in the horizon, else 0.
- future_sum (Float64): the sum of the column's non-null values over the horizon's events;
  0.0 when there is none.
- next_event_type (Utf8): the category value of the first event in the horizon, read from
  its ``<column>__is__<value>`` counts (a merged event with several values takes the value
  with the most rows, ties to the smallest value); ``none_value`` when the horizon has no
  event; null when the first event has no value of the column (all its rows were null).

A pair whose horizon runs past the data (cutoff + horizon > data_end + 1 day) is not
labelled (its churn would be an artefact of the log ending): it is dropped and counted in
``excluded_horizon_past_data``. The day of slack lets a horizon end on the day after the
last event, since logs are often cut at a day's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import polars as pl

from api_client.feature_params import (
    ChurnLabel,
    FutureSumLabel,
    NextEventTypeLabel,
    duration_days,
)
from workers.preprocessing.features.event_rows import (
    DAY_US,
    EventRows,
    Ints,
    TimeSearch,
    cutoff_micros,
    event_rows,
    micros,
    padded_floats,
    range_reduce,
    zeroed,
)
from workers.preprocessing.features.spec import CATEGORY_SEP, CUSTOMER

CUTOFF = "cutoff"
AnyLabel = ChurnLabel | FutureSumLabel | NextEventTypeLabel


def cutoff_labels(
    events: pl.DataFrame,
    cutoffs: Sequence[datetime],
    label: AnyLabel,
    data_end: datetime,
    customers: pl.DataFrame,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """(customer_id, cutoff, <label.name>) for the pairs of ``customers`` (in their order)
    whose horizon ends within the data, and the counts ``labelled`` and
    ``excluded_horizon_past_data``. Every cutoff of ``customers`` must be in ``cutoffs``."""
    rows = event_rows(events)
    times = cutoff_micros(cutoffs)
    horizon = duration_days(label.horizon) * DAY_US
    keys = customers.select(pl.col(CUSTOMER).cast(pl.Utf8), pl.col(CUTOFF).cast(pl.Datetime("us")))
    cutoff = keys[CUTOFF].to_physical().to_numpy().astype(np.int64, copy=False)
    if not np.isin(cutoff, times).all():
        raise ValueError("cutoff_labels: `customers` has cutoffs that are not in `cutoffs`")
    keep = cutoff + horizon <= micros([data_end])[0] + DAY_US
    kept, cutoff = keys.filter(pl.Series(keep)), cutoff[keep]

    customer = _customer_numbers(rows, kept[CUSTOMER])
    search = TimeSearch(rows, np.concatenate([times, times + horizon]))
    lo = search.end(customer, cutoff)
    hi = search.end(customer, cutoff + horizon)
    values = _label_values(rows, label, lo, hi)
    counts = {"labelled": kept.height, "excluded_horizon_past_data": int((~keep).sum())}
    return kept.with_columns(values.alias(label.name)), counts


def _customer_numbers(rows: EventRows, ids: pl.Series) -> Ints:
    """Each id's customer number in ``rows``; -1 (no rows: an empty horizon) when absent."""
    numbers = pl.DataFrame(
        {CUSTOMER: rows.customers, "number": np.arange(rows.customers.len(), dtype=np.int64)}
    )
    found = ids.to_frame(CUSTOMER).join(numbers, on=CUSTOMER, how="left", maintain_order="left")
    return found["number"].fill_null(-1).to_numpy().astype(np.int64, copy=False)


def _label_values(rows: EventRows, label: AnyLabel, lo: Ints, hi: Ints) -> pl.Series:
    if isinstance(label, ChurnLabel):
        return pl.Series((hi == lo).astype(np.int8), dtype=pl.Int8)
    if isinstance(label, FutureSumLabel):
        if label.column not in rows.frame.columns:
            raise ValueError(f"future_sum label: {label.column!r} is not a value column")
        summed = zeroed(padded_floats(rows.frame, label.column))
        # Reduce in row order (customer, then cutoff): one pass over the rows, not one per cutoff.
        order = np.lexsort((hi, lo))
        total = np.empty(lo.size)
        total[order] = range_reduce(np.add, summed, lo[order], hi[order], 0.0)
        return pl.Series(total, dtype=pl.Float64)
    return _next_event_type(rows, label, lo, hi)


def _next_event_type(rows: EventRows, label: NextEventTypeLabel, lo: Ints, hi: Ints) -> pl.Series:
    prefix = f"{label.column}{CATEGORY_SEP}"
    columns = sorted(
        (name for name in rows.frame.columns if name.startswith(prefix)),
        key=lambda name: name[len(prefix) :],
    )
    if not columns:
        raise ValueError(
            f"next_event_type label: no {prefix}<value> counts in the events; "
            f"list {label.column!r} in category_columns"
        )
    values = np.array([name[len(prefix) :] for name in columns], dtype=object)
    seen = hi > lo
    counts = rows.frame.select(columns).fill_null(0)[lo[seen]].to_numpy()
    # argmax takes the first maximum: columns are sorted by value, so ties go to the smallest.
    best = counts.argmax(axis=1) if counts.size else np.zeros(0, dtype=np.int64)
    first = np.where(counts.max(axis=1, initial=0) > 0, values[best], None)
    out = np.full(lo.size, label.none_value, dtype=object)
    out[seen] = first
    return pl.Series(out.tolist(), dtype=pl.Utf8)

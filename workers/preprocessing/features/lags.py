"""Lag features per (customer, cutoff), from the customer's merged events strictly before the
cutoff (events of one customer at the same time are one event, so "previous" is well defined).

- ``<v>__lag_<k>``: the value of the k-th previous event (k = 1: the last event before the
  cutoff); null when the customer has fewer than k events before the cutoff (or when that
  event's value is null).
- ``days_between_events__lag_<k>``: days (float) from the (k+1)-th previous event to the k-th
  previous one; null when there are fewer than k + 1 events before the cutoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from workers.preprocessing.features.event_rows import DAY_US, EventRows, Floats, Ints, Pairs


def lag_names(value_columns: Sequence[str], lags: Sequence[int]) -> list[str]:
    return [f"{v}__lag_{k}" for v in value_columns for k in lags] + [
        f"days_between_events__lag_{k}" for k in lags
    ]


def lag_features(
    rows: EventRows, pairs: Pairs, values: Mapping[str, Floats], lags: Sequence[int]
) -> dict[str, Floats]:
    """``values``: each value column, padded (see ``event_rows.padded_floats``)."""
    out: dict[str, Floats] = {}
    for name, padded in values.items():
        for k in lags:
            out[f"{name}__lag_{k}"] = _at(padded, pairs.end - k, pairs.start)
    for k in lags:
        later, earlier = pairs.end - k, pairs.end - k - 1
        valid = earlier >= pairs.start
        # Integer microseconds first: one rounding, in the division.
        gap = rows.ts[np.where(valid, later, 0)] - rows.ts[np.where(valid, earlier, 0)]
        out[f"days_between_events__lag_{k}"] = np.where(valid, gap / DAY_US, np.nan)
    return out


def _at(column: Floats, row: Ints, start: Ints) -> Floats:
    """column[row], NaN (null) where the row belongs to an earlier customer."""
    valid = row >= start
    return np.where(valid, column[np.where(valid, row, 0)], np.nan)

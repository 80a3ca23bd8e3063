"""Row arithmetic on the prepared event frame (see spec.py), shared by aggregates and labels.

Sorted by (customer_id, ts) with distinct (customer_id, ts), a customer's events before a time
q are the rows ``[start, position(customer, q))``; every feature and label is then a
reduction over a range of one customer's rows. Positions come from one binary search per
query over integer keys (no joins, no per-cutoff filters of the whole frame):
``key = customer number * (T + 1) + bucket(ts)``, where ``bucket(ts)`` is the number of query
times <= ts. For the i-th query time q_i (sorted, 0-based) an event has ts < q_i exactly when
its bucket <= i, so the rows before (customer, q_i) are those with key < customer * (T + 1) +
i + 1. Keys are small integers: no timestamp arithmetic can overflow.

Range reductions of floats (``range_reduce``) read only the rows in the range, so a
customer's numbers never depend on other customers' rows or on rows after the range; integer
counts use exact prefix sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from workers.preprocessing.features.spec import CUSTOMER, N_EVENTS, TS, naive_utc

DAY_US = 86_400_000_000
Ints = np.ndarray[Any, np.dtype[np.int64]]
Floats = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class EventRows:
    frame: pl.DataFrame  # prepared events, sorted by (customer_id, ts)
    ts: Ints  # event times, microseconds
    code: Ints  # customer number of each row: 0..C-1 in customer_id order
    starts: Ints  # first row of each customer (C,)
    customers: pl.Series  # customer ids in order (C,)


def event_rows(events: pl.DataFrame) -> EventRows:
    frame = sorted_events(events)
    code = frame[CUSTOMER].rle_id().cast(pl.Int64).to_numpy()
    starts = np.flatnonzero(np.diff(code, prepend=-1)).astype(np.int64)
    ts = frame[TS].to_physical().to_numpy().astype(np.int64, copy=False)
    return EventRows(frame, ts, code, starts, frame[CUSTOMER].gather(starts))


def sorted_events(events: pl.DataFrame) -> pl.DataFrame:
    """The frame sorted by (customer_id, ts), never trusting the caller's order, with naive
    microsecond times. Raises ValueError on missing keys or unmerged (duplicate) events."""
    missing = [c for c in (CUSTOMER, TS, N_EVENTS) if c not in events.columns]
    if missing:
        raise ValueError(f"not a prepared event frame: no column(s) {missing}")
    if events[CUSTOMER].null_count() or events[TS].null_count():
        raise ValueError("prepared events must have a customer_id and a ts on every row")
    frame = events.with_columns(_naive_us(events[TS]), pl.col(CUSTOMER).cast(pl.Utf8))
    if not _strictly_sorted(frame):
        frame = frame.sort(CUSTOMER, TS, maintain_order=True)
        if not _strictly_sorted(frame):
            raise ValueError("prepared events repeat a (customer_id, ts): merge them first")
    return frame


def _naive_us(ts: pl.Series) -> pl.Series:
    dtype = ts.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return ts.cast(pl.Datetime("us"))


def _strictly_sorted(frame: pl.DataFrame) -> bool:
    # Checking is much cheaper than sorting 10M string keys, and prepare_events sorts already.
    customer, ts = pl.col(CUSTOMER), pl.col(TS)
    after = (customer > customer.shift()) | ((customer == customer.shift()) & (ts > ts.shift()))
    return bool(frame.select(after.slice(1).all()).item())


def micros(moments: Sequence[datetime]) -> Ints:
    """Naive UTC microseconds of each moment (zoned moments converted to UTC)."""
    return np.array(
        [np.datetime64(naive_utc(m), "us").astype(np.int64) for m in moments], dtype=np.int64
    )


def cutoff_micros(cutoffs: Sequence[datetime]) -> Ints:
    """Sorted, distinct cutoffs in microseconds."""
    return np.unique(micros(cutoffs))


class TimeSearch:
    """Rows of a customer before any of a fixed set of times (see the module docstring)."""

    def __init__(self, rows: EventRows, moments: Ints) -> None:
        self.moments = np.unique(moments)
        self.width = self.moments.size + 1
        bucket = np.searchsorted(self.moments, rows.ts, side="right")
        self.keys = rows.code * self.width + bucket

    def end(self, customer: Ints, moment: Ints) -> Ints:
        """Per query: the row after the customer's last event strictly before ``moment``
        (``moment`` must be one of the times given)."""
        slot = np.searchsorted(self.moments, moment, side="left")
        found = self.moments[np.minimum(slot, self.moments.size - 1)] == moment
        if not found.all():
            raise ValueError("TimeSearch.end: a moment outside the times it was built for")
        return np.searchsorted(self.keys, customer * self.width + slot + 1).astype(np.int64)


def padded_floats(frame: pl.DataFrame, name: str) -> Floats:
    """A value column as float64 with NaN for null, plus one NaN row at the end: reduceat
    needs every range end (up to the row count) to be a valid index."""
    values = frame[name].cast(pl.Float64).to_numpy()
    return np.append(values, np.nan)


def zeroed(padded: Floats) -> Floats:
    """Null (NaN) as 0, for sums (np.nan_to_num would also clip infinities)."""
    return np.where(np.isnan(padded), 0.0, padded)


def prefix(counts: np.ndarray) -> Ints:
    """Exact running totals with a leading 0: rows [a, b) hold prefix[b] - prefix[a]."""
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def int_column(frame: pl.DataFrame, name: str) -> Ints:
    """A count column as int64, null (or absent: a category value this frame lacks) as 0."""
    if name not in frame.columns:
        return np.zeros(frame.height, dtype=np.int64)
    return frame[name].fill_null(0).cast(pl.Int64).to_numpy()


class Pieces:
    """Consecutive row ranges per pair: piece i of pair p is [bounds[p, i], bounds[p, i + 1])
    (bounds non-decreasing along a pair's row). Reductions give one contiguous row per piece,
    shape (pieces, pairs). Rows between consecutive pairs' pieces are reduced too (and
    dropped), so pairs should come in row order, as ``Pairs`` do: the cost is then about the
    frame's rows plus the pieces' lengths."""

    def __init__(self, bounds: Ints) -> None:
        self.flat = np.ascontiguousarray(bounds).ravel()
        self.shape = bounds.shape
        by_piece = np.ascontiguousarray(bounds.T)
        self.lo, self.hi = by_piece[:-1], by_piece[1:]
        self.empty = self.hi <= self.lo

    def reduce(self, ufunc: np.ufunc, padded: Floats, identity: float) -> Floats:
        """``ufunc`` over each piece, ``identity`` for empty ones."""
        pairs, width = self.shape
        if pairs == 0:
            return np.empty((width - 1, 0), dtype=np.float64)
        reduced = ufunc.reduceat(padded, self.flat).reshape(pairs, width)
        out = np.ascontiguousarray(reduced[:, :-1].T, dtype=np.float64)
        np.copyto(out, identity, where=self.empty)
        return out


def range_reduce(ufunc: np.ufunc, padded: Floats, lo: Ints, hi: Ints, identity: float) -> Floats:
    """``ufunc`` over rows [lo, hi) of each range (see ``Pieces``)."""
    return Pieces(np.stack([lo, hi], axis=1)).reduce(ufunc, padded, identity)[0]


def range_count(running: Ints, lo: Ints, hi: Ints) -> Ints:
    """Rows [lo, hi) of a running total (``prefix``)."""
    return running[hi] - running[lo]


def ratio(numerator: np.ndarray, denominator: Ints) -> Floats:
    """numerator / denominator, NaN (null) where the denominator is 0."""
    out = np.full(np.broadcast_shapes(numerator.shape, denominator.shape), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


@dataclass(frozen=True)
class Pairs:
    """(customer, cutoff) pairs in row order: by customer, then cutoff. A customer's events
    before the cutoff are the rows [start, end), never empty."""

    customer: Ints  # customer number
    cutoff: Ints  # microseconds
    start: Ints
    end: Ints

    @property
    def size(self) -> int:
        return int(self.customer.size)


def cutoff_pairs(rows: EventRows, times: Ints, search: TimeSearch) -> Pairs:
    """Every customer with an event strictly before a cutoff, for each cutoff (``times``
    sorted and distinct)."""
    first_slot = np.searchsorted(times, rows.ts[rows.starts], side="right")
    per_customer = times.size - first_slot
    customer = np.repeat(np.arange(rows.starts.size, dtype=np.int64), per_customer)
    offsets = np.cumsum(per_customer) - per_customer
    slot = first_slot[customer] + np.arange(customer.size) - offsets[customer]
    cutoff = times[slot]
    return Pairs(customer, cutoff, rows.starts[customer], search.end(customer, cutoff))

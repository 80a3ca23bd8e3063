"""Per-event features (granularity ``event``, the journey model's input): one row per merged
event, describing what the customer did *before* it.

Every feature of an event at ``ts`` reads only the customer's events strictly before ``ts``
(the event itself is excluded), so appending later events never changes an earlier row:

- ``days_since_previous_event``: days (float) since the previous event; null for the first.
- ``<v>__lag_<k>``: value column ``v`` of the k-th previous event.
- ``days_between_events__lag_<k>``: days between the k-th and the (k+1)-th previous events.
- for each window ``w`` (name as written, e.g. ``30D``), over the events in [ts - w, ts):
  ``events__count__<w>`` (merged events, UInt32) and, for each value column,
  ``<v>__sum__<w>`` (0.0 when there is no value), ``<v>__mean__<w>``, ``<v>__std__<w>``
  (ddof 1, null with fewer than two values), ``<v>__min__<w>``, ``<v>__max__<w>``. Null and
  NaN values are skipped, as in the per-cutoff aggregates.
- with ``spec.calendar``, the event's own calendar parts (its time is known when it is
  scored): ``event__year`` (Int32), ``event__quarter``, ``event__month``, ``event__day``,
  ``event__dayofweek`` (Monday = 0), ``event__hour``, ``event__is_weekend`` (Int8), then
  ``event__{month,dayofweek,hour}_{sin,cos}`` = sin/cos(2π(month - 1)/12, 2π·dayofweek/7,
  2π·hour/24) as Float32. No holidays: this family stays one fast pass.

Dtypes are compact on purpose: at 10M events the output is most of the peak memory (about
2.5 GB), and Float32 is exact enough for bounded encodings of small integers.

The windows run as ``DataFrame.rolling(closed="left")`` without a ``group_by``: customers are
laid end to end on an integer time axis, each one a stride (the log's time span plus the
longest window) after the previous one, so no window reaches another customer. Each window's
bounds are computed once for all customers, and rows keep their order. The log is processed
in slices of whole customers, which keeps the int64 axis from overflowing and bounds the
temporary memory.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl

from workers.preprocessing.features.spec import CUSTOMER, TS, FeatureSpec

US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
CHUNK_ROWS = 1_000_000  # events per slice, rounded to whole customers
KEY_LIMIT = 2**62  # the integer time axis stays below this (int64 with room to spare)
WINDOW_STATS = ("sum", "mean", "std", "min", "max")
# Columns of the day table (see _day_table), in output order around event__hour.
DAY_PARTS = ("event__year", "event__quarter", "event__month", "event__day", "event__dayofweek")
DAY_FLAGS = (
    "event__is_weekend",
    "event__month_sin",
    "event__month_cos",
    "event__dayofweek_sin",
    "event__dayofweek_cos",
)
_CODE = "__code"  # customer number: 0, 1, ... in (customer_id) order
_KEY = "__key"  # the integer time axis of the windows


def event_features(events: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Features of each merged event from the customer's earlier events only.

    ``events`` is a prepared event frame (see ``spec``); its row order is not trusted. The
    result has ``customer_id``, ``ts`` and the features, one row per event, sorted by
    (customer_id, ts). Raises ValueError on missing columns, nulls in the keys or on two
    events of a customer at the same time (the frame was not merged).
    """
    frame = _ordered(events, spec.value_columns)
    micros = pl.col(TS).cast(pl.Int64)
    first_us, last_us = frame.select(micros.min().alias("a"), micros.max().alias("b")).row(0)
    if first_us is None:  # no events
        first_us = last_us = 0
    parts = [_history(frame, spec)]
    stride = last_us - first_us + spec.longest_window_days * US_PER_DAY + 1
    slices = _slices(frame, max(1, KEY_LIMIT // stride)) or [(0, 0)]
    windows = [_windows(frame.slice(start, rows), spec, stride) for start, rows in slices]
    # No rechunk: copying the output would double the peak memory.
    parts.append(pl.concat(windows, how="vertical", rechunk=False))
    if spec.calendar:
        parts.append(_calendar(frame, _day_table(first_us // US_PER_DAY, last_us // US_PER_DAY)))
    return pl.concat(parts, how="horizontal")


def feature_columns(spec: FeatureSpec) -> list[str]:
    """The feature names ``event_features`` returns after ``customer_id`` and ``ts``."""
    schema: dict[str, pl.DataType] = {CUSTOMER: pl.String(), TS: pl.Datetime("us")}
    schema |= {v: pl.Float64() for v in spec.value_columns}
    empty = pl.DataFrame(schema=schema)
    return event_features(empty, spec).columns[2:]


# ---------------------------------------------------------------------- order and slices


def _ordered(events: pl.DataFrame, values: tuple[str, ...]) -> pl.DataFrame:
    """The key and value columns sorted by (customer, ts) (no sort when they already are),
    and the customer number ``_CODE``."""
    missing = [c for c in (CUSTOMER, TS, *values) if c not in events.columns]
    if missing:
        raise ValueError(f"the event frame has no column(s) {missing}")
    frame = events.select(
        pl.col(CUSTOMER).cast(pl.String),
        pl.col(TS).cast(pl.Datetime("us")),
        *(pl.col(v).cast(pl.Float64) for v in values),
    )
    # NaN is a missing value here, as in the per-cutoff aggregates (filled only where there
    # is one: the copy is 80 MB at 10M events).
    with_nan = [v for v in values if frame[v].is_nan().any()]
    if with_nan:
        frame = frame.with_columns(pl.col(with_nan).fill_nan(None))
    if frame.select(pl.col(CUSTOMER).null_count() + pl.col(TS).null_count()).item():
        raise ValueError(f"`{CUSTOMER}` and `{TS}` must not be null")
    customer, ts = pl.col(CUSTOMER), pl.col(TS)
    same = customer == customer.shift(1)
    # Checking is a linear scan; sorting 10M rows by a string takes seconds.
    ordered = (customer > customer.shift(1)) | (same & (ts > ts.shift(1)))
    if not frame.select(ordered.all()).item():
        frame = frame.sort(CUSTOMER, TS)
        if frame.select((same & (ts == ts.shift(1))).any()).item():
            raise ValueError(
                "two events of a customer at the same time: the frame is not merged "
                "(prepare_events sums a customer's rows with the same timestamp)"
            )
    # The one pass over the strings; everything after compares integers.
    return frame.with_columns(customer.rle_id().alias(_CODE))


def _slices(frame: pl.DataFrame, max_customers: int) -> list[tuple[int, int]]:
    """(first row, rows) of consecutive slices of whole customers: about ``CHUNK_ROWS`` rows
    and at most ``max_customers`` customers each."""
    code = pl.col(_CODE)
    starts = frame.select((code != code.shift(1)).fill_null(True).arg_true())[_CODE].to_numpy()
    bounds, index = [], 0
    while index < len(starts):
        end = int(np.searchsorted(starts, starts[index] + CHUNK_ROWS, side="left"))
        end = max(index + 1, min(end, index + max_customers))
        bounds.append(int(starts[index]))
        index = end
    bounds.append(frame.height)
    return [(a, b - a) for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------------- features


def _history(frame: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """``customer_id``, ``ts``, the gap to the previous event, and the lags."""
    code, micros = pl.col(_CODE), pl.col(TS).cast(pl.Int64)
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    first_row = pl.when(code != code.shift(1).fill_null(-1)).then(row).forward_fill()
    seq, gap = pl.col("seq"), pl.col("gap")
    # Computed once (an eager select would recompute a repeated subexpression).
    return frame.with_columns(
        (row - first_row).alias("seq"),  # position in the customer's history: 0 for the first
        (micros.diff() / US_PER_DAY).alias("gap"),
    ).select(
        CUSTOMER,
        TS,
        pl.when(seq >= 1).then(gap).alias("days_since_previous_event"),
        # Lags in the per-cutoff order (lags.lag_names): values, then gaps.
        *(
            pl.when(seq >= k).then(pl.col(v).shift(k)).alias(f"{v}__lag_{k}")
            for v in spec.value_columns
            for k in spec.lag_periods
        ),
        *(
            pl.when(seq > k).then(gap.shift(k)).alias(f"days_between_events__lag_{k}")
            for k in spec.lag_periods
        ),
    )


def _windows(frame: pl.DataFrame, spec: FeatureSpec, stride: int) -> pl.DataFrame:
    """The window features of a slice of whole customers (see the module docstring)."""
    code, micros = pl.col(_CODE).cast(pl.Int64), pl.col(TS).cast(pl.Int64)
    frame = frame.with_columns(((code - code.min()) * stride + micros - micros.min()).alias(_KEY))
    # Without nulls a window's mean is sum / count, bit for bit what polars' rolling mean
    # computes: one rolling kernel less per window.
    no_nulls = [v for v in spec.value_columns if frame[v].null_count() == 0]
    parts = []
    for name, window_days in spec.windows:
        count = f"events__count__{name}"
        aggregates = [pl.len().cast(pl.UInt32).alias(count)]
        for v in spec.value_columns:
            value = pl.col(v)
            aggregates += [
                value.sum().alias(f"{v}__sum__{name}"),
                *([] if v in no_nulls else [value.mean().alias(f"{v}__mean__{name}")]),
                value.std().alias(f"{v}__std__{name}"),
                value.min().alias(f"{v}__min__{name}"),
                value.max().alias(f"{v}__max__{name}"),
            ]
        window = frame.rolling(
            index_column=_KEY, period=f"{window_days * US_PER_DAY}i", closed="left"
        ).agg(aggregates)
        means = [
            pl.when(pl.col(count) > 0)
            .then(pl.col(f"{v}__sum__{name}") / pl.col(count))
            .alias(f"{v}__mean__{name}")
            for v in no_nulls
        ]
        names = [f"{v}__{stat}__{name}" for v in spec.value_columns for stat in WINDOW_STATS]
        parts.append(window.with_columns(means).select(count, *names))
    return pl.concat(parts, how="horizontal") if parts else pl.DataFrame(height=frame.height)


def _calendar(frame: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """The calendar columns of the events of ``frame``, from the day table and the hour."""
    micros = pl.col(TS).cast(pl.Int64)
    day_number, first_day = micros // US_PER_DAY, days["day_number"][0]
    index = frame.select(
        (day_number - first_day).cast(pl.UInt32).alias("day"),
        ((micros - day_number * US_PER_DAY) // US_PER_HOUR).cast(pl.Int8).alias("hour"),
    )
    hour = index["hour"]
    looked_up = days.drop("day_number")[index["day"]]  # a gather: rows of the day table
    hour_cycle = pl.select(*_cyclic("hour", pl.int_range(24) / 24))[hour.cast(pl.UInt32)]
    return pl.concat(
        [
            looked_up.select(DAY_PARTS),
            hour.alias("event__hour").to_frame(),
            looked_up.select(DAY_FLAGS),
            hour_cycle,
        ],
        how="horizontal",
    )


def _cyclic(name: str, phase: pl.Expr) -> list[pl.Expr]:
    """sin and cos of a phase in [0, 1), as Float32."""
    angle = phase * (2 * math.pi)
    return [
        angle.sin().cast(pl.Float32).alias(f"event__{name}_sin"),
        angle.cos().cast(pl.Float32).alias(f"event__{name}_cos"),
    ]


def _day_table(first_day: int, last_day: int) -> pl.DataFrame:
    """``day_number`` (days since the epoch) from ``first_day`` to ``last_day`` and the
    calendar parts of each day.

    Events look their day up here: one row per day of the log instead of a calendar
    conversion per event (polars' dt.year, dt.month, ... per event cost as much as two
    windows).
    """
    day = pl.int_range(first_day, last_day + 1, dtype=pl.Int64)
    moment = (day * US_PER_DAY).cast(pl.Datetime("us"))
    month, dayofweek = moment.dt.month(), moment.dt.weekday() - 1
    return pl.select(
        day.alias("day_number"),
        moment.dt.year().alias("event__year"),
        moment.dt.quarter().alias("event__quarter"),
        month.alias("event__month"),
        moment.dt.day().alias("event__day"),
        dayofweek.alias("event__dayofweek"),
        (dayofweek >= 5).cast(pl.Int8).alias("event__is_weekend"),
        *_cyclic("month", (month - 1) / 12),
        *_cyclic("dayofweek", dayofweek / 7),
    )

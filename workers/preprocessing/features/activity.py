"""Shape of a customer's recent activity per (customer, cutoff): seasonality (Fourier), trend
and change point of the daily event counts in the window before the cutoff.

The series. With ``n = spec.longest_window_days`` and a cutoff ``c``, day ``t`` (0..n-1) is
[c - (n - t) days, c - (n - t - 1) days): t = 0 is the oldest day of the window
[c - n days, c) and t = n - 1 the day just before the cutoff (calendar days when cutoffs fall
at midnight). ``x_t`` is the number of (merged) events on day t; N = Σ x_t; the mean daily
count is m = N / n. Only events strictly before the cutoff are read.

- ``activity__fourier_cos_k`` = a_k / m and ``activity__fourier_sin_k`` = b_k / m for
  k = 1..K (``spec.fourier_order``), with a_k = (2/n) Σ_t x_t cos(2πkt/n) and
  b_k = (2/n) Σ_t x_t sin(2πkt/n): the amplitude of k cycles per window relative to the
  mean (so a_k / m = 2 Σ x_t cos(2πkt/n) / N). 0 when N = 0. A series m(1 + cos(2πt/n))
  gives a_1/m = 1, b_1/m = 0.
- ``activity__trend_slope``: OLS slope of x_t on t (events per day, per day);
  ``activity__trend_strength``: the R² of that fit (0 when the counts are constant);
  ``activity__trend_sign`` (Int8): the sign of the slope, 0 when |slope| is within one
  standard error sqrt(RSS / (n - 2) / Σ(t - t̄)²), or when that error is undefined (n < 3).
- ``activity__change_score``: (n2 - n1) / sqrt(n1 + n2), n1 and n2 the events in the first
  and second half of the window ([c - n, c - n/2) and [c - n/2, c), halves in time, so equal
  even for odd n). Under equal Poisson rates n2 - n1 has mean 0 and variance n1 + n2, so this
  is an approximate z test of a change in rate: positive when the rate rose recently. 0 when
  n1 + n2 = 0.

Rows: every customer with at least one event strictly before the cutoff (customers with none
in the window get zeros), sorted by (cutoff, customer_id).

How. Each event is paired with the cutoffs whose window holds it (binary search in the sorted
cutoffs), the pairs are counted per (cutoff, customer, day) by one integer sort, and the sums
over days are taken with ``np.add.reduceat`` over those counts in key order: deterministic, so
a customer's features depend neither on row order nor on the other customers in the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import polars as pl

from workers.preprocessing.features.spec import CUSTOMER, TS, FeatureSpec, naive_utc

CUTOFF = "cutoff"
DAY_US = 86_400_000_000
PREFIX = "activity__"
PAIR_ROWS = 2_000_000  # (event, cutoff) pairs expanded at once: ~130 bytes each at peak


def activity_columns(spec: FeatureSpec) -> list[str]:
    """Feature columns ``activity_features`` returns for ``spec``, in order."""
    names = [
        f"{PREFIX}fourier_{part}_{k}"
        for k in range(1, spec.fourier_order + 1)
        for part in ("sin", "cos")
    ]
    if spec.trend:
        names += [f"{PREFIX}trend_slope", f"{PREFIX}trend_sign", f"{PREFIX}trend_strength"]
    if spec.change_points:
        names.append(f"{PREFIX}change_score")
    return names


def activity_features(
    events: pl.DataFrame, cutoffs: Sequence[datetime], spec: FeatureSpec
) -> pl.DataFrame:
    """Fourier, trend and change-point features of the daily counts before each cutoff."""
    cut_us = _cutoff_micros(cutoffs)
    customers, code, ts_us = _encode(events)
    width = max(len(customers), 1)  # pair key: cutoff index × width + customer code
    pairs = _pairs(code, ts_us, cut_us, width)
    keys = pl.DataFrame(
        {
            CUSTOMER: customers.gather(pairs % width),
            CUTOFF: pl.Series(cut_us[pairs // width], dtype=pl.Int64).cast(pl.Datetime("us")),
        },
        schema={CUSTOMER: pl.Utf8, CUTOFF: pl.Datetime("us")},
    )
    if not activity_columns(spec):
        return keys
    n = spec.longest_window_days
    sums = _sums(code, ts_us, cut_us, pairs, width, n, spec.fourier_order)
    return keys.with_columns(_features(sums, n, spec))


def _cutoff_micros(cutoffs: Sequence[datetime]) -> np.ndarray:
    """Sorted, distinct cutoffs as naive-UTC microseconds since the epoch."""
    moments = sorted({naive_utc(c) for c in cutoffs})
    return pl.Series(moments, dtype=pl.Datetime("us")).cast(pl.Int64).to_numpy()


def _encode(events: pl.DataFrame) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """Distinct customers (sorted), each event's customer code and timestamp in µs."""
    customer = events[CUSTOMER].cast(pl.Utf8)
    if customer.is_sorted():  # the prepared frame is: codes are run numbers
        starts = customer.ne_missing(customer.shift(1))
        customers = customer.filter(starts)
        code = starts.cast(pl.Int64).cum_sum().to_numpy() - 1
    else:
        customers = customer.unique().sort()
        code = customers.search_sorted(customer).to_numpy().astype(np.int64)
    ts_us = events[TS].cast(pl.Datetime("us")).cast(pl.Int64).to_numpy()
    return customers, code, ts_us


def _pairs(code: np.ndarray, ts_us: np.ndarray, cut_us: np.ndarray, width: int) -> np.ndarray:
    """Sorted pair keys of the rows: customers with an event strictly before the cutoff."""
    first = np.full(width, np.iinfo(np.int64).max)
    np.minimum.at(first, code, ts_us)
    start = np.searchsorted(cut_us, first, side="right")  # first cutoff after the first event
    customer, cutoff = _expand(np.arange(width), start, np.full(width, len(cut_us)))
    return np.sort(cutoff * width + customer)


def _expand(item: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each item repeated once per index in [lo, hi), with that index."""
    count = np.maximum(hi - lo, 0)
    total = int(count.sum())
    starts = np.repeat(np.cumsum(count) - count, count)
    return np.repeat(item, count), np.repeat(lo, count) + np.arange(total) - starts


def _sums(
    code: np.ndarray,
    ts_us: np.ndarray,
    cut_us: np.ndarray,
    pairs: np.ndarray,
    width: int,
    n: int,
    order: int,
) -> dict[str, np.ndarray]:
    """Window sums aligned with ``pairs``, a run of cutoffs at a time to bound memory."""
    # Cutoffs c with ts < c <= ts + span see the event: ts in [c - span, c).
    lo = np.searchsorted(cut_us, ts_us, side="right")
    hi = np.searchsorted(cut_us, ts_us + n * DAY_US, side="right")
    parts = []
    for first, last in _cutoff_runs(lo, hi, len(cut_us)):
        rows = np.searchsorted(pairs, [first * width, last * width])
        daily = _daily_counts(
            code, ts_us, cut_us, np.clip(lo, first, last), np.clip(hi, first, last), width, n
        )
        parts.append(_window_sums(daily, pairs[rows[0] : rows[1]], n, order))
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _cutoff_runs(lo: np.ndarray, hi: np.ndarray, count: int) -> list[tuple[int, int]]:
    """Consecutive cutoff ranges [first, last) of about ``PAIR_ROWS`` (event, cutoff) pairs
    each (daily cutoffs with long windows pair every event with many cutoffs)."""
    starts = np.bincount(lo, minlength=count + 1) - np.bincount(hi, minlength=count + 1)
    per_cutoff = np.cumsum(starts)[:count]  # events in each cutoff's window
    runs, first, total = [], 0, 0
    for index, size in enumerate(per_cutoff.tolist()):
        if total and total + size > PAIR_ROWS:
            runs.append((first, index))
            first, total = index, 0
        total += size
    runs.append((first, count))
    return runs


def _daily_counts(
    code: np.ndarray,
    ts_us: np.ndarray,
    cut_us: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    width: int,
    n: int,
) -> dict[str, np.ndarray]:
    """Events per (pair, day t) with those in the window's second half, sorted by (pair, t),
    for the cutoffs [lo, hi) of each event."""
    span = n * DAY_US
    event, cutoff = _expand(np.arange(len(ts_us)), lo, hi)
    age = cut_us[cutoff] - ts_us[event]  # in (0, span]
    day = n - 1 - (age - 1) // DAY_US
    late = age * 2 <= span
    # One integer sort, the half in the lowest bit: runs of equal keys are the counts.
    key = np.sort(((cutoff * width + code[event]) * n + day) * 2 + late)
    run_starts = np.flatnonzero(np.diff(key, prepend=-1))
    run_counts = np.diff(np.append(run_starts, len(key)))
    day_key = key[run_starts] >> 1
    # A day holds two runs only when it straddles the middle of the window (odd n).
    day_starts = np.flatnonzero(np.diff(day_key, prepend=-1))
    late_counts = np.where(key[run_starts] & 1, run_counts, 0)
    return {
        "pair": day_key[day_starts] // n,
        "t": day_key[day_starts] % n,
        "x": np.add.reduceat(run_counts, day_starts) if len(day_starts) else run_counts,
        "late": np.add.reduceat(late_counts, day_starts) if len(day_starts) else late_counts,
    }


def _window_sums(
    daily: dict[str, np.ndarray], pairs: np.ndarray, n: int, order: int
) -> dict[str, np.ndarray]:
    """Sums over each pair's days, aligned with ``pairs`` (0 where no event in the window)."""
    pair, t = daily["pair"], daily["t"]
    x = daily["x"].astype(np.float64)
    weights = {"count": x, "t_x": t * x, "x_x": x * x, "late": daily["late"].astype(np.float64)}
    grid = 2 * np.pi * np.arange(n) / n  # trigonometric tables over the n days, not per row
    for k in range(1, order + 1):
        weights[f"cos_{k}"] = x * np.cos(k * grid)[t]
        weights[f"sin_{k}"] = x * np.sin(k * grid)[t]
    starts = np.flatnonzero(np.diff(pair, prepend=-1))
    rows = np.searchsorted(pairs, pair[starts])
    sums = {}
    for name, values in weights.items():
        column = np.zeros(len(pairs))
        if len(starts):
            column[rows] = np.add.reduceat(values, starts)
        sums[name] = column
    return sums


def _features(sums: dict[str, np.ndarray], n: int, spec: FeatureSpec) -> list[pl.Series]:
    total = sums["count"]
    out: list[pl.Series] = []
    for k in range(1, spec.fourier_order + 1):
        for part in ("sin", "cos"):
            ratio = _divide(2 * sums[f"{part}_{k}"], total)
            out.append(pl.Series(f"{PREFIX}fourier_{part}_{k}", ratio))
    if spec.trend:
        out.extend(_trend(total, sums["t_x"], sums["x_x"], n))
    if spec.change_points:
        late, early = sums["late"], total - sums["late"]
        score = _divide(late - early, np.sqrt(total))
        out.append(pl.Series(f"{PREFIX}change_score", score))
    return out


def _trend(total: np.ndarray, t_x: np.ndarray, x_x: np.ndarray, n: int) -> list[pl.Series]:
    """OLS of x_t on t = 0..n-1 from Σx, Σtx and Σx² (closed forms over the fixed t grid)."""
    s_tt = n * (n * n - 1) / 12  # Σ(t - t̄)²
    s_tx = t_x - (n - 1) / 2 * total  # Σ(t - t̄)(x - x̄)
    s_xx = np.maximum(x_x - total * total / n, 0.0)  # Σ(x - x̄)²
    slope = s_tx / s_tt if s_tt > 0 else np.zeros_like(total)
    strength = np.clip(_divide(slope * s_tx, s_xx), 0.0, 1.0)
    if n > 2:
        residual = np.maximum(s_xx - slope * s_tx, 0.0)
        error = np.sqrt(residual / (n - 2) / s_tt)
        sign = np.where(np.abs(slope) > error, np.sign(slope), 0)
    else:
        sign = np.zeros_like(total)
    return [
        pl.Series(f"{PREFIX}trend_slope", slope),
        pl.Series(f"{PREFIX}trend_sign", sign.astype(np.int8)),
        pl.Series(f"{PREFIX}trend_strength", strength),
    ]


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    out = np.zeros(len(numerator))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out

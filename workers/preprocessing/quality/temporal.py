"""Temporal structure of an event table: daily volume, gaps, trend, seasonality, change points,
and periods in which a column breaks from its usual values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_SEGMENT_DAYS = 14
MAX_CHANGE_POINTS = 5
TREND_MAX_POINTS = 2000  # Theil-Sen is O(n^2): longer series use weekly sums
BREAK_SHARE = 0.99  # one value makes up at least this share of a month ...
BREAK_ELSEWHERE_MAX = 0.8  # ... and at most this share of the other months
BREAK_MIN_MONTH_ROWS = 30
BREAK_MAX_LEVELS = 50
DERIVED_SHARE = 0.9  # months held by one value cover this much of the rows: date-derived
MAD_SIGMA = 1.4826  # sigma of a normal from its median absolute deviation


def daily_counts(days: np.ndarray) -> tuple[np.datetime64, np.ndarray]:
    """(first day, events per calendar day from it to the last day). ``days``: non-missing
    datetime64[D] values."""
    as_int = days.astype("datetime64[D]").astype(np.int64)
    first = int(as_int.min())
    counts = np.bincount(as_int - first)
    return np.datetime64(first, "D"), counts


def missing_day_share(counts: np.ndarray) -> float:
    return float((counts == 0).sum()) / counts.size if counts.size else 0.0


def largest_gap(counts: np.ndarray) -> tuple[int, int]:
    """(length, start index) of the longest run of zero days; (0, -1) when there is none."""
    zero = np.concatenate(([0], (counts == 0).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(zero))
    if edges.size == 0:
        return 0, -1
    starts, ends = edges[::2], edges[1::2]
    lengths = ends - starts
    best = int(np.argmax(lengths))
    return int(lengths[best]), int(starts[best])


@dataclass(frozen=True)
class Trend:
    slope_per_year: float | None  # relative to the mean daily count
    kendall_tau: float | None
    p_value: float | None
    direction: str  # up | down | flat


def trend(counts: np.ndarray) -> Trend:
    """Theil-Sen slope and Kendall's tau of the daily counts against time."""
    series, days_per_point = counts.astype(float), 1
    if series.size > TREND_MAX_POINTS:
        weeks = series.size // 7
        series, days_per_point = series[: weeks * 7].reshape(weeks, 7).sum(axis=1), 7
    if series.size < 3 or np.all(series == series[0]):
        return Trend(None, None, None, "flat")
    index = np.arange(series.size, dtype=float)
    tau, p_value = stats.kendalltau(index, series)
    slope = stats.theilslopes(series, index).slope
    mean = series.mean()
    relative = float(slope * (365 / days_per_point) / mean) if mean > 0 else None
    significant = p_value < 0.05 and abs(tau) >= 0.1
    direction = ("up" if tau > 0 else "down") if significant else "flat"
    return Trend(relative, float(tau), float(p_value), direction)


def seasonality_strength(series: np.ndarray, period: int, phase: np.ndarray) -> float | None:
    """Strength of seasonality, max(0, 1 - Var(R) / Var(S + R)) (FPP3 §4.3).

    Trend: centred moving average over ``period``; S: mean of the detrended series by
    ``phase`` (weekday, week of year), centred; R: what is left. Needs two full periods.
    """
    n = series.size
    if n < 2 * period:
        return None
    kernel = np.ones(period) / period
    if period % 2 == 0:  # a 2 x period MA centres an even window (classical decomposition)
        kernel = np.convolve(kernel, [0.5, 0.5])
    half = kernel.size // 2
    trend_part = np.convolve(series, kernel, mode="valid")
    detrended = series[half : half + trend_part.size] - trend_part
    phases = phase[half : half + trend_part.size]
    means = np.bincount(phases, weights=detrended) / np.maximum(np.bincount(phases), 1)
    seasonal = means[phases] - means[np.unique(phases)].mean()
    remainder = detrended - seasonal
    total = np.var(seasonal + remainder)
    if total == 0:
        return None
    return float(max(0.0, 1.0 - np.var(remainder) / total))


def weekly_strength(first_day: np.datetime64, counts: np.ndarray) -> float | None:
    weekday = (np.arange(counts.size) + _weekday(first_day)) % 7
    return seasonality_strength(counts.astype(float), 7, weekday)


def annual_strength(first_day: np.datetime64, counts: np.ndarray) -> float | None:
    weeks = counts.size // 7
    if weeks < 104:
        return None
    weekly = counts[: weeks * 7].reshape(weeks, 7).sum(axis=1).astype(float)
    day = first_day.astype("datetime64[D]")
    day_of_year = int((day - day.astype("datetime64[Y]").astype("datetime64[D]")).astype(int))
    week_of_year = ((day_of_year + 7 * np.arange(weeks)) % 364) // 7  # 52 phases
    return seasonality_strength(weekly, 52, week_of_year)


def _weekday(day: np.datetime64) -> int:
    return int((day.astype("datetime64[D]").astype(np.int64) + 3) % 7)  # 1970-01-01: Thursday


def change_points(
    series: np.ndarray,
    min_segment: int = MIN_SEGMENT_DAYS,
    max_points: int = MAX_CHANGE_POINTS,
) -> list[int]:
    """Indices where the mean shifts: binary segmentation on squared error with a BIC
    penalty of 2·σ²·ln(n) per change (σ from the median absolute first difference, which a
    few shifts do not inflate, and at least the Poisson σ of the mean count). Sorted; each
    segment at least ``min_segment`` long."""
    values = series.astype(float)
    n = values.size
    if n < 2 * min_segment:
        return []
    sigma = MAD_SIGMA * float(np.median(np.abs(np.diff(values)))) / np.sqrt(2)
    # Event counts are at least Poisson-noisy (variance = mean): a floor that keeps a
    # regular series with one partial day from "changing".
    sigma = max(sigma, float(np.sqrt(max(values.mean(), 0.0))))
    if sigma == 0:
        return []
    penalty = 2 * sigma**2 * np.log(n)
    found: list[int] = []
    segments = [(0, n)]
    while segments and len(found) < max_points:
        best: tuple[float, int, tuple[int, int]] | None = None
        for start, end in segments:
            split = _best_split(values[start:end], min_segment)
            if split is not None and (best is None or split[0] > best[0]):
                best = (split[0], start + split[1], (start, end))
        if best is None or best[0] <= penalty:
            break
        _, at, (start, end) = best
        found.append(at)
        segments.remove((start, end))
        segments += [(start, at), (at, end)]
    return sorted(found)


def _best_split(values: np.ndarray, min_segment: int) -> tuple[float, int] | None:
    """(reduction of the squared error, split index) of the best single mean shift."""
    n = values.size
    if n < 2 * min_segment:
        return None
    cumulative = np.cumsum(values)
    total = cumulative[-1]
    k = np.arange(min_segment, n - min_segment + 1)
    left = cumulative[k - 1]
    # SSE(whole) - SSE(left) - SSE(right) = k(n-k)/n * (mean_left - mean_right)^2
    gain = k * (n - k) / n * (left / k - (total - left) / (n - k)) ** 2
    best = int(np.argmax(gain))
    return float(gain[best]), int(k[best])


@dataclass(frozen=True)
class PeriodBreak:
    start: int  # first month of the run (offset from the first month)
    end: int  # last month of the run
    value: str
    share: float
    rows: int
    elsewhere_share: float


def month_table(months: np.ndarray, codes: np.ndarray, n_months: int, n_levels: int) -> np.ndarray:
    """Rows per (month, value code): ``months`` and ``codes`` per row, negative ones ignored."""
    keep = (months >= 0) & (codes >= 0)
    flat = months[keep] * n_levels + codes[keep]
    return np.bincount(flat, minlength=n_months * n_levels).reshape(n_months, n_levels)


def period_breaks(
    table: np.ndarray, labels: list[str], derived_check: bool = True
) -> list[PeriodBreak]:
    """Runs of months where one value makes up ≥ 99% of the rows while it makes up ≤ 80% of
    the other months' rows — a collection break, such as a column that turns entirely
    'unknown' for two months.

    A column with one value per month in months holding ≥ 90% of the rows is derived from
    the date (a month name, a period label) and has no breaks. ``derived_check=False`` skips
    that test, for a missing/not-missing table: a complete month is not a derived value.

    ``table``: rows per (month, value), months in order (see ``month_table``).
    """
    n_months, n_levels = table.shape
    if n_months == 0 or n_levels > BREAK_MAX_LEVELS:
        return []
    per_month = table.sum(axis=1)
    dominated = table.max(axis=1) >= BREAK_SHARE * per_month
    if derived_check and per_month[dominated].sum() >= DERIVED_SHARE * per_month.sum():
        return []
    breaks: list[PeriodBreak] = []
    for level in range(n_levels):
        month_share = np.divide(
            table[:, level], per_month, out=np.zeros(n_months), where=per_month > 0
        )
        hit = (month_share >= BREAK_SHARE) & (per_month >= BREAK_MIN_MONTH_ROWS)
        for start, end in _runs(hit):
            inside = slice(start, end + 1)
            rows = int(per_month[inside].sum())
            other_rows = int(per_month.sum()) - rows
            if other_rows == 0:
                continue
            elsewhere = float((table[:, level].sum() - table[inside, level].sum()) / other_rows)
            if elsewhere > BREAK_ELSEWHERE_MAX:
                continue
            breaks.append(
                PeriodBreak(
                    start=start,
                    end=end,
                    value=labels[level],
                    share=float(table[inside, level].sum() / rows),
                    rows=rows,
                    elsewhere_share=elsewhere,
                )
            )
    return breaks


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def month_index(timestamps: np.ndarray) -> tuple[np.datetime64, np.ndarray]:
    """(first month, month offset per value) of datetime64 values (NaT -> -1)."""
    months = timestamps.astype("datetime64[M]")
    valid = ~np.isnat(months)
    as_int = months.astype(np.int64)
    first = int(as_int[valid].min()) if valid.any() else 0
    offsets = np.where(valid, as_int - first, -1)
    return np.datetime64(first, "M"), offsets

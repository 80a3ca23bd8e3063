"""What to compute, resolved from BuildFeaturesParams: windows in days, cutoffs as times.

The prepared event frame every feature family reads (``events.prepare_events``) is a polars
DataFrame sorted by (customer_id, ts), one row per *merged* event (a customer's rows with the
same timestamp are one event), with columns:

- ``customer_id`` (Utf8), ``ts`` (Datetime "us", UTC, no zone)
- ``n_events`` (Int64): raw rows merged into the event
- each value column (Float64): the sum over the merged rows (null when all were null)
- ``<category column>__is__<value>`` (Int64): raw rows with that category value
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from api_client.feature_params import BuildFeaturesParams, CutoffSchedule, duration_days

CUSTOMER = "customer_id"
TS = "ts"
N_EVENTS = "n_events"
CATEGORY_SEP = "__is__"
STEPS = {
    "day": pd.DateOffset(days=1),
    "week": pd.DateOffset(weeks=1),
    "month": pd.DateOffset(months=1),
    "quarter": pd.DateOffset(months=3),
}


@dataclass(frozen=True)
class FeatureSpec:
    value_columns: tuple[str, ...] = ()
    category_columns: tuple[str, ...] = ()
    lag_periods: tuple[int, ...] = (1,)
    windows: tuple[tuple[str, int], ...] = (("30D", 30),)  # (name as written, days)
    calendar: bool = True
    holidays_country: str | None = None
    fourier_order: int = 0
    trend: bool = False
    change_points: bool = False
    # Category values seen in the log, per category column (fixed before any partition runs,
    # so every partition produces the same columns).
    category_values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def longest_window_days(self) -> int:
        return max((days for _, days in self.windows), default=30)


def feature_spec(
    params: BuildFeaturesParams, category_values: dict[str, tuple[str, ...]] | None = None
) -> FeatureSpec:
    windows = sorted({(w, duration_days(w)) for w in params.rolling_windows}, key=lambda x: x[1])
    # (lengths are distinct: the contract refuses two windows of one length)
    return FeatureSpec(
        value_columns=tuple(params.value_columns),
        category_columns=tuple(params.category_columns),
        lag_periods=tuple(sorted(set(params.lag_periods))),
        windows=tuple(windows),
        calendar=params.calendar,
        holidays_country=params.holidays_country,
        fourier_order=params.fourier_order,
        trend=params.trend,
        change_points=params.change_points,
        # Only the mixes asked for: a label's category column is not a feature by itself.
        category_values={
            name: values
            for name, values in (category_values or {}).items()
            if name in params.category_columns
        },
    )


def naive_utc(moment: datetime) -> datetime:
    """UTC without a zone (times without a zone are UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def cutoff_times(cutoffs: list[datetime] | CutoffSchedule) -> list[datetime]:
    """Sorted, distinct cutoffs as naive UTC datetimes."""
    if isinstance(cutoffs, CutoffSchedule):
        # Steps counted from `from` (not added one after another, which would drift from
        # the 31st to the 28th after February): every month from 1997-01-31 is 01-31,
        # 02-28, 03-31, ...
        start, end = naive_utc(cutoffs.start), naive_utc(cutoffs.end)
        times = []
        for k in range(100_000):
            moment = (pd.Timestamp(start) + STEPS[cutoffs.every] * k).to_pydatetime()
            if moment > end:
                break
            times.append(moment)
        return times
    return sorted({naive_utc(c) for c in cutoffs})

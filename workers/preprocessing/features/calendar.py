"""Calendar features of two moments per (customer, cutoff): the last event before the cutoff
(prefix ``last_event``) and the cutoff itself (prefix ``cutoff``).

For a prefix ``p`` and its timestamp (naive UTC):

- ``p__year``, ``p__quarter`` (1..4), ``p__month`` (1..12), ``p__day`` (1..31),
  ``p__dayofweek`` (Monday = 0 .. Sunday = 6), ``p__hour`` (0..23), all Int32;
- ``p__is_weekend`` (Int8): Saturday or Sunday;
- ``p__is_business_day`` (Int8): a weekday that is not a holiday (without a holidays
  country: a weekday);
- with a holidays country only: ``p__is_holiday`` (Int8), ``p__days_to_holiday`` (days from
  the date to the next holiday on or after it: 0 on a holiday) and ``p__days_from_holiday``
  (days since the previous holiday on or before it), Int32; null when no such holiday falls
  in the years looked up (the data's years, one either side);
- cyclical encodings, Float64: ``p__month_sin/cos`` = sin/cos(2π(month - 1)/12),
  ``p__dayofweek_sin/cos`` = sin/cos(2π·dayofweek/7), ``p__hour_sin/cos`` = sin/cos(2π·hour/24).

Holidays are dates of the ``holidays`` package (observed days included) matched against the
UTC date of the timestamp, not the local date.
"""

from __future__ import annotations

import math

import holidays
import numpy as np
import polars as pl

from workers.preprocessing.features.spec import CUSTOMER, FeatureSpec

CUTOFF = "cutoff"
LAST_EVENT_TS = "last_event_ts"
PREFIXES = (("last_event", LAST_EVENT_TS), ("cutoff", CUTOFF))
CYCLES = (("month", 12, 1), ("dayofweek", 7, 0), ("hour", 24, 0))  # (part, period, first)
SHOWN_CODES = 12


def check_country(code: str) -> None:
    """Raise ``ValueError`` when ``holidays`` does not know the country code."""
    supported = holidays.list_supported_countries()
    if code.upper() not in supported:
        examples = ", ".join(sorted(c for c in supported if len(c) == 2)[:SHOWN_CODES])
        raise ValueError(
            f"holidays_country {code!r} is not a country known to the holidays package; "
            f"use an ISO 3166 code such as US, GB, DE, FR (known: {examples}, ...)"
        )


def calendar_features(last_event: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Calendar features of ``last_event_ts`` and ``cutoff`` for each (customer, cutoff) row."""
    keys = last_event.select(CUSTOMER, CUTOFF)
    if not spec.calendar:
        return keys
    frame = last_event.select(
        pl.col(CUTOFF).cast(pl.Datetime("us")),
        pl.col(LAST_EVENT_TS).cast(pl.Datetime("us")),
    )
    dates = _holiday_dates(frame, spec.holidays_country)
    columns: list[pl.Series] = []
    for prefix, source in PREFIXES:
        columns.extend(_moment_features(frame[source], prefix, dates))
    return keys.with_columns(columns)


def _holiday_dates(frame: pl.DataFrame, country: str | None) -> np.ndarray | None:
    """Sorted holiday dates (days since 1970-01-01) over the years of both timestamps, one
    year either side so the next and previous holidays of any date are found."""
    if country is None:
        return None
    check_country(country)
    years = pl.concat([frame[LAST_EVENT_TS], frame[CUTOFF]]).dt.year().drop_nulls()
    if years.is_empty():
        return np.empty(0, dtype=np.int64)
    first, last = int(years.min()), int(years.max())  # type: ignore[arg-type]
    found = holidays.country_holidays(country.upper(), years=range(first - 1, last + 2))
    return np.sort(np.array(list(found.keys()), dtype="datetime64[D]").astype(np.int64))


def _moment_features(
    moment: pl.Series, prefix: str, holiday_dates: np.ndarray | None
) -> list[pl.Series]:
    parts = {
        "year": moment.dt.year(),
        "quarter": moment.dt.quarter(),
        "month": moment.dt.month(),
        "day": moment.dt.day(),
        "dayofweek": moment.dt.weekday() - 1,  # polars: Monday = 1
        "hour": moment.dt.hour(),
    }
    out = [values.cast(pl.Int32).alias(f"{prefix}__{name}") for name, values in parts.items()]
    weekday = parts["dayofweek"] < 5
    out.append((~weekday).cast(pl.Int8).alias(f"{prefix}__is_weekend"))
    is_holiday: pl.Series | None = None
    holiday_columns: list[pl.Series] = []
    if holiday_dates is not None:
        is_holiday, to_next, from_previous = _holiday_distances(moment, holiday_dates)
        holiday_columns = [
            is_holiday.cast(pl.Int8).alias(f"{prefix}__is_holiday"),
            to_next.alias(f"{prefix}__days_to_holiday"),
            from_previous.alias(f"{prefix}__days_from_holiday"),
        ]
    business = weekday if is_holiday is None else weekday & ~is_holiday
    out.append(business.cast(pl.Int8).alias(f"{prefix}__is_business_day"))
    out.extend(holiday_columns)
    for name, period, first in CYCLES:
        angle = (parts[name].cast(pl.Float64) - first) * (2 * math.pi / period)
        out.append(angle.sin().alias(f"{prefix}__{name}_sin"))
        out.append(angle.cos().alias(f"{prefix}__{name}_cos"))
    return out


def _holiday_distances(
    moment: pl.Series, holiday_dates: np.ndarray
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Whether each date is a holiday, the days to the next holiday on or after it and since
    the previous one on or before it, by binary search in the sorted holiday dates (null when
    the moment is null or there is no such holiday)."""
    day = moment.dt.date().cast(pl.Int32)
    missing = day.is_null().to_numpy()
    days = day.fill_null(0).to_numpy().astype(np.int64)
    count = len(holiday_dates)
    after = np.searchsorted(holiday_dates, days, side="left")
    before = np.searchsorted(holiday_dates, days, side="right") - 1
    padded = np.append(holiday_dates, 0)  # index `count`: no next holiday, masked below
    to_next = padded[after] - days
    return (
        _masked((after < count) & (to_next == 0), missing, pl.Boolean),
        _masked(to_next, missing | (after >= count), pl.Int32),
        _masked(days - padded[before], missing | (before < 0), pl.Int32),
    )


def _masked(values: np.ndarray, mask: np.ndarray, dtype: type[pl.DataType]) -> pl.Series:
    return pl.Series(values, dtype=dtype).scatter(np.flatnonzero(mask), None)

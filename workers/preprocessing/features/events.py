"""From a registered event log to the prepared event frame (see spec.py): checked columns,
timestamps parsed to naive UTC, and each customer's rows with the same timestamp merged into
one event, so every feature is invariant to row order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workers.preprocessing.features.spec import CATEGORY_SEP, CUSTOMER, N_EVENTS, TS

# A time of day followed by an explicit UTC offset or Z ("...T10:00:00+02:00", "... 10:00Z");
# a date alone is never zoned (so "01-12-1997" is not read as an offset of -1997).
ZONED = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$"
# Text times must be ISO 8601: a day-first "01-12-1997" or "12/01/1997" would be guessed.
ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?$"
SHOWN_ROWS = 5


class EventLogError(ValueError):
    """The log cannot be made into events as asked; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PreparedLog:
    events: pl.DataFrame
    category_values: dict[str, tuple[str, ...]]
    rows_in: int
    rows_without_key: int  # dropped: no customer id or no timestamp (counted, documented)
    all_missing_value_columns: list[str] = field(default_factory=list)

    @property
    def data_end(self) -> Any:
        return self.events[TS].max()


def prepare_events(
    frame: pl.DataFrame,
    customer_column: str,
    timestamp_column: str,
    value_columns: Sequence[str],
    category_columns: Sequence[str],
) -> PreparedLog:
    _require_columns(frame, [customer_column, timestamp_column, *value_columns, *category_columns])
    for name in value_columns:
        # An all-empty column is stored as text by ingest: it is missing, not mistyped.
        all_missing = frame[name].null_count() == frame.height
        if not frame.schema[name].is_numeric() and not all_missing:
            raise EventLogError(
                "column_type_mismatch",
                f"value column {name!r} holds {frame.schema[name]} values, not numbers; "
                "ingest it with a numeric dtype or leave it out of value_columns",
            )
    ts = _timestamps(frame[timestamp_column])
    table = pl.DataFrame(
        {
            CUSTOMER: frame[customer_column].cast(pl.Utf8),
            TS: ts,
            # NaN is missing, as null is (a value summed into NaN would hide the others).
            **{name: frame[name].cast(pl.Float64).fill_nan(None) for name in value_columns},
            **{name: frame[name].cast(pl.Utf8) for name in category_columns},
        }
    )
    keyed = table.filter(pl.col(CUSTOMER).is_not_null() & pl.col(TS).is_not_null())
    category_values = {
        name: tuple(sorted(keyed[name].drop_nulls().unique().to_list()))
        for name in category_columns
    }
    return PreparedLog(
        events=_merge(keyed, value_columns, category_values),
        category_values=category_values,
        rows_in=frame.height,
        rows_without_key=table.height - keyed.height,
        all_missing_value_columns=[
            n for n in value_columns if keyed[n].null_count() == keyed.height
        ],
    )


def _require_columns(frame: pl.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in dict.fromkeys(names) if name not in frame.columns]
    if missing:
        raise EventLogError(
            "column_missing",
            f"column(s) {', '.join(map(repr, missing))} not in the event log; it has: "
            + ", ".join(frame.columns[:20]),
        )


def _timestamps(column: pl.Series) -> pl.Series:
    """Naive UTC microseconds. Zoned datetimes are converted; text is parsed, and refused when
    some values do not parse or when zoned and unzoned values are mixed."""
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return column.cast(pl.Datetime("us"))
    if isinstance(dtype, pl.Date):
        return column.cast(pl.Datetime("us"))
    if dtype != pl.Utf8 and dtype != pl.String:
        raise EventLogError(
            "column_type_mismatch",
            f"timestamp column {column.name!r} holds {dtype} values, not times",
        )
    text = column.str.strip_chars()
    zoned = text.str.contains(ZONED)
    present = text.is_not_null()
    n_zoned, n_present = int((zoned & present).sum()), int(present.sum())
    if 0 < n_zoned < n_present:
        rows = _rows_where((present & ~zoned) if n_zoned > n_present / 2 else (zoned & present))
        raise EventLogError(
            "timestamp_timezone_mixed",
            f"timestamp column {column.name!r} mixes values with a UTC offset ({n_zoned:,}) "
            f"and without ({n_present - n_zoned:,}), e.g. rows {rows}; give every value an "
            "offset (or none: then they are read as UTC)",
        )
    parsed = (
        text.str.to_datetime(time_unit="us", time_zone="UTC", strict=False).dt.replace_time_zone(
            None
        )
        if n_zoned
        else text.str.to_datetime(time_unit="us", strict=False)
    )
    failed = present & (parsed.is_null() | ~text.str.contains(ISO).fill_null(False))
    if failed.any():
        raise EventLogError(
            "timestamp_unparseable",
            f"{int(failed.sum()):,} value(s) of {column.name!r} are not ISO 8601 timestamps "
            f"(YYYY-MM-DD[ HH:MM[:SS]][Z|±HH:MM]), e.g. rows {_rows_where(failed)}: "
            f"{text.filter(failed).head(SHOWN_ROWS).to_list()}",
        )
    return parsed.alias(column.name)


def _rows_where(mask: pl.Series) -> list[int]:
    return mask.arg_true().head(SHOWN_ROWS).to_list()


def _merge(
    table: pl.DataFrame, value_columns: Sequence[str], category_values: dict[str, tuple[str, ...]]
) -> pl.DataFrame:
    """One event per (customer, timestamp): values summed (null when all are null), rows
    counted, category rows counted per value."""
    sums = [
        pl.when(pl.col(name).count() > 0).then(pl.col(name).sum()).otherwise(None).alias(name)
        for name in value_columns
    ]
    counts = [
        (pl.col(name) == value).sum().cast(pl.Int64).alias(f"{name}{CATEGORY_SEP}{value}")
        for name, values in category_values.items()
        for value in values
    ]
    # Sorting the values first fixes the order floats are summed in: the merged sums are
    # then the same, to the bit, whatever the order of the rows in the log.
    return (
        table.sort(CUSTOMER, TS, *value_columns, nulls_last=True)
        .group_by(CUSTOMER, TS, maintain_order=True)
        .agg(pl.len().cast(pl.Int64).alias(N_EVENTS), *sums, *counts)
        .sort(CUSTOMER, TS)
    )

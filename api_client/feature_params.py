"""Params of ``build_features``: point-in-time features per customer from an event log.

Durations use cip-ml's own syntax, not pandas' or polars' (pandas 3 refuses "1M"; in polars
"1m" is a minute): ``<n>D`` days or ``<n>W`` weeks, n ≥ 1. Cutoff schedules spell calendar
steps out: ``{"every": "month" | "quarter" | "week" | "day", "from": ..., "to": ...}``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from api_client.strict import ColumnName, DatasetName, StrictModel, Timestamp

DURATION = re.compile(r"^([1-9][0-9]{0,4})([DW])$")
Duration = Annotated[
    str,
    Field(
        pattern=DURATION.pattern,
        description="a positive number of days or weeks: `30D`, `4W`",
        examples=["7D", "273D", "39W"],
    ),
]


def duration_days(text: str) -> int:
    """Days in a duration such as ``30D`` or ``39W``."""
    match = DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use <n>D (days) or <n>W (weeks), n >= 1")
    count, unit = int(match.group(1)), match.group(2)
    return count * (7 if unit == "W" else 1)


def _utc(moment: datetime) -> datetime:
    """Naive UTC, so zoned and unzoned times compare (times without a zone are UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class CutoffSchedule(StrictModel):
    """Cutoffs on a calendar: every month (or quarter, week, day) from ``from`` to ``to``."""

    every: Literal["day", "week", "month", "quarter"]
    start: Timestamp = Field(alias="from")
    end: Timestamp = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> CutoffSchedule:
        if _utc(self.end) < _utc(self.start):
            raise ValueError(f"`to` ({self.end}) is before `from` ({self.start})")
        return self


class ChurnLabel(StrictModel):
    """1 when the customer has no event in [cutoff, cutoff + horizon)."""

    kind: Literal["churn"]
    horizon: Duration
    name: ColumnName = "label"


class FutureSumLabel(StrictModel):
    """The sum of ``column`` over the customer's events in [cutoff, cutoff + horizon)."""

    kind: Literal["future_sum"]
    column: ColumnName
    horizon: Duration
    name: ColumnName = "label"


class NextEventTypeLabel(StrictModel):
    """The ``column`` value of the customer's first event in [cutoff, cutoff + horizon), or
    ``none_value`` when there is none."""

    kind: Literal["next_event_type"]
    column: ColumnName
    horizon: Duration
    none_value: str = "none"
    name: ColumnName = "label"


Label = Annotated[ChurnLabel | FutureSumLabel | NextEventTypeLabel, Field(discriminator="kind")]


class BuildFeaturesParams(StrictModel):
    """build_features: one row per (customer, cutoff), or one per event, with lineage."""

    dataset_id: Annotated[int, Field(ge=1, description="id of a registered event log")]
    name: DatasetName | None = Field(
        None, description="name of the feature dataset; default: `<input name>.features`"
    )
    customer_id_column: ColumnName
    timestamp_column: ColumnName
    value_columns: list[ColumnName] = Field(
        default_factory=list, description="numeric columns summarised by lags and windows"
    )
    category_columns: list[ColumnName] = Field(
        default_factory=list, description="text columns whose mix per window is a feature"
    )
    granularity: Literal["cutoff", "event"] = Field(
        "cutoff", description="one row per (customer, cutoff), or one per event"
    )
    cutoffs: list[Timestamp] | CutoffSchedule | None = Field(
        None, description="cutoff times (UTC when without a zone); required for `cutoff`"
    )
    lag_periods: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [1], description="k-th previous event's values and gap"
    )
    rolling_windows: list[Duration] = Field(
        default_factory=lambda: ["30D"], description="windows [t - w, t) of the aggregates"
    )
    calendar: bool = True
    holidays_country: str | None = Field(
        None, min_length=2, max_length=3, description="ISO country code (`holidays` package)"
    )
    fourier_order: int = Field(0, ge=0, le=10)
    trend: bool = False
    change_points: bool = False
    label: Label | None = None
    partitions: int = Field(
        1, ge=1, le=1024, description="customer partitions built as parallel tasks"
    )

    @model_validator(mode="after")
    def _consistent(self) -> BuildFeaturesParams:
        if self.granularity == "cutoff" and self.cutoffs is None:
            raise ValueError("granularity 'cutoff' needs `cutoffs` (a list or a schedule)")
        if self.granularity == "event" and self.label is not None:
            raise ValueError("labels are defined per cutoff; use granularity 'cutoff'")
        if isinstance(self.cutoffs, list) and not self.cutoffs:
            raise ValueError("`cutoffs` is empty")
        lengths: dict[int, str] = {}
        for window in self.rolling_windows:
            same = lengths.setdefault(duration_days(window), window)
            if same != window:
                raise ValueError(f"rolling windows {same} and {window} are the same length")
        return self

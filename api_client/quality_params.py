"""Params of the data-quality jobs: ``assess_quality`` and ``clean`` (docs/quality.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from api_client.strict import ColumnName, DatasetName, StrictModel, Timestamp

DatasetId = Annotated[int, Field(ge=1, description="id of a registered dataset")]
DeclaredType = Literal["numeric", "integer", "string", "timestamp", "boolean"]


class ValueRange(StrictModel):
    """Inclusive bounds a column's values must lie within (either may be open)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class AssessQualityParams(StrictModel):
    """assess_quality: a quality report (JSON + HTML) of a registered dataset."""

    dataset_id: DatasetId
    time_column: ColumnName | None = Field(
        None, description="the event-time column; default: the first timestamp column"
    )
    key_columns: list[ColumnName] = Field(
        default_factory=list, description="columns that identify a row (duplicate keys)"
    )
    declared_types: dict[ColumnName, DeclaredType] = Field(
        default_factory=dict, description="types columns must conform to (validity)"
    )
    ranges: dict[ColumnName, ValueRange] = Field(
        default_factory=dict, description="inclusive value ranges numeric columns must respect"
    )
    non_negative: list[ColumnName] | None = Field(
        None,
        description=(
            "columns that must not be negative; default: numeric columns with a name part "
            "such as amount, value, price, revenue, spend, cost, sales, quantity, qty, count "
            "or number_of (parts are separated by _ or other non-letters)"
        ),
    )
    as_of: Timestamp | None = Field(
        None,
        description=(
            "the time the data is judged at (future timestamps, last-event age), UTC when it "
            "has no zone; default: when the dataset was registered, so the same dataset "
            "gives the same report"
        ),
    )
    freshness_half_life_days: float = Field(
        30.0, gt=0, le=36_500, description="last-event age at which freshness is 0.5"
    )
    high_cardinality: int = Field(
        1000, ge=2, description="distinct text values above which a column is high-cardinality"
    )


ImputeStrategy = Literal[
    "drop", "constant", "mean", "median", "most_frequent", "knn", "iterative", "group_median"
]


class ImputeRule(StrictModel):
    """How one column's (or one kind of column's) missing values are filled."""

    strategy: ImputeStrategy
    value: float | str | None = Field(None, description="the fill value of `constant`")
    by: ColumnName | None = Field(
        None, description="the group column of `group_median` (e.g. the event type)"
    )
    indicator: bool = Field(False, description="add a `<column>__was_missing` 0/1 column")

    @model_validator(mode="after")
    def _complete(self) -> ImputeRule:
        if self.strategy == "constant" and self.value is None:
            raise ValueError("strategy 'constant' needs a value")
        if self.strategy == "group_median" and self.by is None:
            raise ValueError("strategy 'group_median' needs `by`, the group column")
        if self.strategy != "group_median" and self.by is not None:
            raise ValueError(f"`by` applies to group_median only, not {self.strategy!r}")
        return self


class MissingConfig(StrictModel):
    numeric: ImputeRule | None = Field(
        default_factory=lambda: ImputeRule(strategy="median"),
        description="default rule for numeric columns (null: leave missing)",
    )
    categorical: ImputeRule | None = Field(
        default_factory=lambda: ImputeRule(strategy="most_frequent"),
        description="default rule for text/boolean columns (null: leave missing)",
    )
    columns: dict[ColumnName, ImputeRule] = Field(
        default_factory=dict, description="per-column rules, overriding the defaults"
    )
    knn_neighbors: int = Field(5, ge=1, le=100)
    iterative_max_iter: int = Field(10, ge=1, le=100)


class IsolationForestConfig(StrictModel):
    columns: list[ColumnName] | None = Field(None, description="default: every numeric column")
    contamination: Literal["auto"] | Annotated[float, Field(gt=0, le=0.5)] = "auto"
    flag_column: ColumnName = "is_outlier"


class OutlierConfig(StrictModel):
    cap: Literal["iqr", "quantile"] | None = Field(
        None, description="cap numeric values at IQR fences or at quantiles (null: no capping)"
    )
    columns: list[ColumnName] | None = Field(
        None, description="columns to cap; default: every numeric column"
    )
    iqr_k: float = Field(1.5, gt=0, le=100, description="fences at Q1 - k*IQR, Q3 + k*IQR")
    quantiles: list[float] = Field(
        default_factory=lambda: [0.01, 0.99],
        min_length=2,
        max_length=2,
        description="lower and upper capping quantiles",
    )
    robust_scale: list[ColumnName] = Field(
        default_factory=list, description="columns scaled by (x - median) / IQR"
    )
    isolation_forest: IsolationForestConfig | None = Field(
        None, description="flag anomalous rows in a 0/1 column (rows are never deleted)"
    )

    @model_validator(mode="after")
    def _quantiles_ordered(self) -> OutlierConfig:
        low, high = self.quantiles
        if not 0 <= low < high <= 1:
            raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {low}, {high}")
        return self


class FitPeriod(StrictModel):
    """The training period: rows with ``time_column`` before ``before`` (UTC when it has no
    zone)."""

    time_column: ColumnName
    before: Timestamp


class CleanParams(StrictModel):
    """clean: a cleaned dataset plus the fitted cleaning pipeline (a skops artifact)."""

    dataset_id: DatasetId
    name: DatasetName | None = Field(
        None, description="name of the cleaned dataset; default: `<input name>.clean`"
    )
    fit_on: FitPeriod | None = Field(
        None, description="fit every step on this period only (default: all rows)"
    )
    exclude: list[ColumnName] = Field(
        default_factory=list, description="columns passed through untouched (ids, labels)"
    )
    drop_columns: list[ColumnName] = Field(
        default_factory=list, description="columns removed from the cleaned dataset"
    )
    missing: MissingConfig = Field(default_factory=MissingConfig)
    outliers: OutlierConfig = Field(default_factory=OutlierConfig)
    duplicates: Literal["keep", "drop_rows", "drop_keys"] = Field(
        "drop_rows",
        description="drop exact duplicate rows, or keep the last row per key_columns",
    )
    key_columns: list[ColumnName] = Field(default_factory=list)
    normalize_categories: bool | list[ColumnName] = Field(
        True, description="map spellings such as 'NY'/'ny ' to one (all text columns, or these)"
    )
    seed: int = Field(
        0, ge=0, description="seed of the randomised steps (isolation forest, iterative imputer)"
    )

    @model_validator(mode="after")
    def _keys_for_drop_keys(self) -> CleanParams:
        if self.duplicates == "drop_keys" and not self.key_columns:
            raise ValueError("duplicates 'drop_keys' needs key_columns")
        return self

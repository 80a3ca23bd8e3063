"""All feature families for one partition of customers, joined into the output table.

A customer's features depend only on that customer's events, the cutoffs, the category
values and the end of the data — all fixed before partitioning — so building partitions
apart and sorting the union by (cutoff, customer) gives the same table, bit for bit, as
building everything at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from api_client.feature_params import BuildFeaturesParams
from workers.preprocessing.features.activity import activity_features
from workers.preprocessing.features.aggregates import cutoff_aggregates
from workers.preprocessing.features.calendar import calendar_features
from workers.preprocessing.features.events import EventLogError
from workers.preprocessing.features.labels import cutoff_labels
from workers.preprocessing.features.per_event import event_features
from workers.preprocessing.features.spec import CUSTOMER, TS, FeatureSpec

KEYS = [CUSTOMER, "cutoff"]


@dataclass
class Built:
    table: pl.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def build_partition(
    events: pl.DataFrame,
    params: BuildFeaturesParams,
    spec: FeatureSpec,
    cutoffs: Sequence[datetime],
    data_end: datetime,
) -> Built:
    if params.granularity == "event":
        table = event_features(events, spec)  # already sorted by (customer, ts)
        return Built(_named(table, params), {"rows": table.height})
    table = cutoff_aggregates(events, cutoffs, spec)
    keys = table.select(KEYS)
    for extra in (
        calendar_features(_last_events(events, keys), spec),
        activity_features(events, cutoffs, spec),
    ):
        added = [c for c in extra.columns if c not in KEYS]
        if added:
            table = table.join(extra.select(*KEYS, *added), on=KEYS, how="left")
    counts = {"rows_before_labels": table.height}
    if params.label is not None:
        if params.label.name in table.columns or params.label.name == params.customer_id_column:
            raise EventLogError(
                "column_exists",
                f"the label column {params.label.name!r} would replace a column of the same "
                "name; set label.name to another name",
            )
        labels, label_counts = cutoff_labels(events, cutoffs, params.label, data_end, keys)
        table = table.join(labels, on=KEYS, how="inner")
        counts.update(label_counts)
    table = table.sort("cutoff", CUSTOMER)
    counts["rows"] = table.height
    return Built(_named(table, params), counts)


def _last_events(events: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """Each (customer, cutoff)'s last event strictly before the cutoff: one as-of join, not
    a pass over the log per cutoff."""
    left = keys.with_columns(pl.col("cutoff").cast(pl.Datetime("us"))).sort("cutoff")
    right = events.select(CUSTOMER, pl.col(TS).alias("last_event_ts")).sort("last_event_ts")
    return left.join_asof(
        right,
        left_on="cutoff",
        right_on="last_event_ts",
        by=CUSTOMER,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,  # both sides are sorted by time just above
    ).select(CUSTOMER, "cutoff", "last_event_ts")


def _named(table: pl.DataFrame, params: BuildFeaturesParams) -> pl.DataFrame:
    """The customer (and, per event, the time) column under the log's own names."""
    names = {CUSTOMER: params.customer_id_column}
    if TS in table.columns:
        names[TS] = params.timestamp_column
    return table.rename({old: new for old, new in names.items() if old != new})

"""cutoff_aggregates: RFM, lags and windows per (customer, cutoff), by hand on a small frame,
proven leakage-free by construction, and checked against a plain-Python reference."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from workers.preprocessing.features.aggregates import cutoff_aggregates
from workers.preprocessing.features.spec import FeatureSpec

T1 = datetime(2024, 2, 1)
T = datetime(2024, 3, 1)  # 2024 is a leap year: T - 30D = Jan 31, T - 7D = Feb 23
SPEC = FeatureSpec(
    value_columns=("amount",),
    category_columns=("channel",),
    category_values={"channel": ("shop", "web")},
    lag_periods=(1, 2, 4, 5),
    windows=(("7D", 7), ("30D", 30)),
)
COLUMNS = ["customer_id", "ts", "n_events", "amount", "channel__is__shop", "channel__is__web"]
# (customer, ts, n_events, amount, rows with channel shop, rows with channel web)
EVENTS = [
    ("a", datetime(2024, 1, 1), 1, 10.0, 1, 0),
    ("a", datetime(2024, 1, 31), 2, 20.0, 1, 1),  # exactly T - 30D: in the 30D window
    ("a", datetime(2024, 2, 23), 1, None, 0, 1),  # exactly T - 7D: in the 7D window
    ("a", datetime(2024, 2, 29, 12), 1, 40.0, 0, 1),
    ("a", datetime(2024, 3, 1), 1, 1000.0, 1, 0),  # exactly at T: out
    ("b", datetime(2024, 2, 10), 1, 5.0, 1, 0),
    ("c", datetime(2024, 3, 5), 1, 7.0, 0, 1),  # only after every cutoff: no row
]


def frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    schema: dict[str, Any] = {
        "customer_id": pl.Utf8,
        "ts": pl.Datetime("us"),
        "n_events": pl.Int64,
        "amount": pl.Float64,
        "channel__is__shop": pl.Int64,
        "channel__is__web": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").sort("customer_id", "ts")


def row(customer: str, cutoff: datetime, events: list[tuple[Any, ...]] = EVENTS) -> dict:
    out = cutoff_aggregates(frame(events), [T1, T], SPEC)
    found = out.filter((pl.col("customer_id") == customer) & (pl.col("cutoff") == cutoff))
    assert found.height == 1
    return found.row(0, named=True)


def test_one_row_per_customer_with_an_event_before_the_cutoff_sorted_by_cutoff() -> None:
    out = cutoff_aggregates(frame(EVENTS), [T, T1], SPEC)  # any cutoff order
    # b's first event (Feb 10) is after T1; c has none before T.
    assert out.select("cutoff", "customer_id").rows() == [(T1, "a"), (T, "a"), (T, "b")]
    assert out.columns[:2] == ["customer_id", "cutoff"]
    assert out.schema["cutoff"] == pl.Datetime("us")
    assert out.schema["frequency"] == pl.Int64
    assert out.schema["events__count__7D"] == pl.Int64


def test_recency_frequency_monetary_and_tenure() -> None:
    a = row("a", T)  # events Jan 1, Jan 31, Feb 23, Feb 29 12:00 (not Mar 1)
    assert a["days_since_last_event"] == 0.5  # Feb 29 12:00 -> Mar 1
    assert a["days_since_first_event"] == 60  # Jan 1 -> Mar 1: 31 + 29
    assert a["frequency"] == 4
    assert a["raw_event_count"] == 5  # 1 + 2 + 1 + 1
    assert a["amount__sum"] == 70  # 10 + 20 + 40 (Feb 23 is null)
    assert a["amount__mean"] == pytest.approx(70 / 3)  # 3 non-null values
    a1 = row("a", T1)  # Jan 1, Jan 31
    assert (a1["days_since_last_event"], a1["days_since_first_event"]) == (1, 31)
    assert (a1["frequency"], a1["raw_event_count"], a1["amount__sum"]) == (2, 3, 30)
    b = row("b", T)  # Feb 10 -> Mar 1: 20 days
    assert (b["days_since_last_event"], b["days_since_first_event"], b["amount__mean"]) == (
        20,
        20,
        5,
    )


def test_lags_are_previous_events_and_null_when_too_few() -> None:
    a = row(
        "a", T
    )  # previous events, latest first: Feb 29 12:00 (40), Feb 23 (null), Jan 31, Jan 1
    assert a["amount__lag_1"] == 40
    assert a["amount__lag_2"] is None  # that event's value is null
    assert a["amount__lag_4"] == 10
    assert a["amount__lag_5"] is None  # 4 events only
    assert a["days_between_events__lag_1"] == 6.5  # Feb 23 -> Feb 29 12:00
    assert a["days_between_events__lag_2"] == 23  # Jan 31 -> Feb 23
    assert a["days_between_events__lag_4"] is None  # needs a 5th event
    b = row("b", T)  # one event
    assert b["amount__lag_1"] == 5
    assert b["amount__lag_2"] is None
    assert b["days_between_events__lag_1"] is None


def test_windows_are_half_open() -> None:
    a = row("a", T)
    # [Jan 31, Mar 1): Jan 31 (at the start: in), Feb 23, Feb 29 12:00; Mar 1 (the cutoff): out.
    assert a["events__count__30D"] == 3
    # [Feb 23, Mar 1): Feb 23 (at the start: in), Feb 29 12:00.
    assert a["events__count__7D"] == 2
    a1 = row("a", T1)  # [Jan 2, Feb 1) and [Jan 25, Feb 1): Jan 31 only
    assert (a1["events__count__30D"], a1["events__count__7D"]) == (1, 1)


def test_window_statistics_ignore_nulls() -> None:
    a = row("a", T)
    # 30D values 20, null, 40: sum 60, mean 30, std sqrt(((20-30)² + (40-30)²) / 1) = sqrt(200).
    assert (a["amount__sum__30D"], a["amount__mean__30D"]) == (60, 30)
    assert a["amount__std__30D"] == pytest.approx(math.sqrt(200))
    assert (a["amount__min__30D"], a["amount__max__30D"]) == (20, 40)
    # 7D values null, 40: one value, so the std is null.
    assert (a["amount__sum__7D"], a["amount__mean__7D"], a["amount__std__7D"]) == (40, 40, None)
    assert (a["amount__min__7D"], a["amount__max__7D"]) == (40, 40)
    b = row("b", T)  # 7D [Feb 23, Mar 1) holds none of b's events
    assert (b["events__count__7D"], b["amount__sum__7D"]) == (0, 0)
    empty = ("amount__mean__7D", "amount__std__7D", "amount__min__7D", "amount__max__7D")
    assert [b[name] for name in empty] == [None] * 4


def test_category_shares_are_raw_rows_over_raw_rows() -> None:
    a = row("a", T)
    # 30D: raw rows 2 + 1 + 1 = 4; shop 1 (Jan 31), web 1 + 1 + 1 = 3.
    assert (a["channel__share__shop__30D"], a["channel__share__web__30D"]) == (0.25, 0.75)
    # 7D: raw rows 1 + 1 = 2, both web.
    assert (a["channel__share__shop__7D"], a["channel__share__web__7D"]) == (0, 1)
    b = row("b", T)  # an empty window: shares are null, not 0
    assert (b["channel__share__shop__7D"], b["channel__share__web__7D"]) == (None, None)
    assert b["channel__share__shop__30D"] == 1


def test_column_names_and_order() -> None:
    spec = FeatureSpec(
        value_columns=("dollar_value", "number_of_cds"),
        lag_periods=(1, 7, 30),
        windows=(("7D", 7), ("14D", 14), ("30D", 30), ("90D", 90)),
    )
    events = pl.DataFrame(
        {
            "customer_id": ["x", "x"],
            "ts": [T1, T1 + timedelta(days=1)],
            "n_events": [1, 1],
            "dollar_value": [12.5, 3.0],
            "number_of_cds": [1.0, None],
        }
    )
    out = cutoff_aggregates(events, [T1, T], spec)
    values = ("dollar_value", "number_of_cds")
    windowed = [
        name
        for w in ("7D", "14D", "30D", "90D")
        for name in [
            f"events__count__{w}",
            *(f"{v}__{s}__{w}" for v in values for s in ("sum", "mean", "std", "min", "max")),
        ]
    ]
    assert out.columns == [
        "customer_id",
        "cutoff",
        "days_since_last_event",
        "days_since_first_event",
        "frequency",
        "raw_event_count",
        *(f"{v}__{s}" for v in values for s in ("sum", "mean")),
        *(f"{v}__lag_{k}" for v in values for k in (1, 7, 30)),
        *(f"days_between_events__lag_{k}" for k in (1, 7, 30)),
        *windowed,
    ]
    assert out.select("customer_id", "cutoff").rows() == [("x", T)]


def test_refuses_unmerged_events() -> None:
    twice = [*EVENTS, ("b", datetime(2024, 2, 10), 1, 1.0, 1, 0)]
    with pytest.raises(ValueError, match="merge them first"):
        cutoff_aggregates(frame(twice), [T], SPEC)


# Leakage, by construction.


def test_events_at_or_after_the_cutoff_change_nothing() -> None:
    rng = np.random.default_rng(7)
    before = cutoff_aggregates(frame(EVENTS), [T], SPEC)
    later = [
        (
            str(rng.choice(["a", "b", "c", "d"])),
            T + timedelta(hours=int(hours)),  # hours = 0: exactly at the cutoff
            int(rng.integers(1, 4)),
            float(rng.normal(0, 1e6)),
            int(rng.integers(0, 2)),
            int(rng.integers(0, 2)),
        )
        for hours in [0, *rng.choice(np.arange(1, 2000), 40, replace=False).tolist()]
    ]
    taken = {(e[0], e[1]) for e in EVENTS}
    later = [e for e in later if (e[0], e[1]) not in taken]  # one event per customer and time
    after = cutoff_aggregates(frame(EVENTS + later), [T], SPEC)
    assert_frame_equal(after, before, check_exact=True)


def test_moving_one_event_across_the_cutoff_changes_exactly_its_features() -> None:
    moved = [e if e[1] != T else (*e[:1], T - timedelta(hours=1), *e[2:]) for e in EVENTS]
    before = cutoff_aggregates(frame(EVENTS), [T1, T], SPEC)
    after = cutoff_aggregates(frame(moved), [T1, T], SPEC)
    # a's Mar 1 event (1000, 1 shop row) moves to Feb 29 23:00, the last event before T.
    # Unchanged: days_since_first_event (Jan 1); lag_5 of amount (a has 5 events: the 5th
    # previous is Jan 1 = 10, was null) changes, but days_between_events__lag_5 needs 6 events:
    # null before and after; the 7D and 30D minimums stay 40 and 20 (1000 is larger).
    changed = {
        "days_since_last_event",  # 0.5 -> 1/24
        "frequency",  # 4 -> 5
        "raw_event_count",  # 5 -> 6
        "amount__sum",  # 70 -> 1070
        "amount__mean",  # 70/3 -> 1070/4
        "amount__lag_1",  # 40 -> 1000
        "amount__lag_2",  # null -> 40
        "amount__lag_4",  # 10 -> 20
        "amount__lag_5",  # null -> 10
        "days_between_events__lag_1",  # 6.5 -> 11/24
        "days_between_events__lag_2",  # 23 -> 6.5
        "days_between_events__lag_4",  # null -> 30 (Jan 1 -> Jan 31)
        *(
            f"{name}__{w}"
            for w in ("7D", "30D")
            for name in (
                "events__count",
                "amount__sum",
                "amount__mean",
                "amount__std",
                "amount__max",
                "channel__share__shop",
                "channel__share__web",
            )
        ),
    }
    keys = ["customer_id", "cutoff"]
    assert_frame_equal(before.select(keys), after.select(keys))
    target = (pl.col("customer_id") == "a") & (pl.col("cutoff") == T)
    assert_frame_equal(before.filter(~target), after.filter(~target), check_exact=True)
    old, new = before.filter(target), after.filter(target)
    differ = {c for c in before.columns if old[c].ne_missing(new[c]).any()}
    assert differ == changed


# Properties: any row order, any later events, and a plain-Python reference.

CUSTOMERS = ("a", "b", "c", "d")
BASE = datetime(2024, 1, 1)
PROPERTY_SPEC = FeatureSpec(
    value_columns=("amount",),
    category_columns=("channel",),
    category_values={"channel": ("shop", "web")},
    lag_periods=(1, 3),
    windows=(("1D", 1), ("7D", 7), ("3D", 3)),  # not sorted: the output keeps this order
)


@st.composite
def event_rows(draw: st.DrawFn, first_hour: int = 0, last_hour: int = 24 * 20) -> list[tuple]:
    """Events on the hour (so many fall exactly on a cutoff or a window start), distinct per
    (customer, hour); amounts in quarters (exact sums), some null."""
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(CUSTOMERS), st.integers(first_hour, last_hour)),
            unique=True,
            max_size=30,
        )
    )
    rows = []
    for customer, hour in keys:
        n = draw(st.integers(1, 3))
        shop = draw(st.integers(0, n))
        web = draw(st.integers(0, n - shop))  # the rest had no channel
        amount = draw(st.none() | st.integers(-400, 400).map(lambda q: q / 4))
        rows.append((customer, BASE + timedelta(hours=hour), n, amount, shop, web))
    return rows


cutoff_days = st.lists(st.integers(0, 21), min_size=1, max_size=4, unique=True)


@settings(max_examples=150, deadline=None)
@given(rows=event_rows(), days=cutoff_days, seed=st.integers(0, 2**32 - 1))
def test_any_row_order_gives_the_same_features(
    rows: list[tuple], days: list[int], seed: int
) -> None:
    cutoffs = [BASE + timedelta(days=d) for d in days]
    ordered = cutoff_aggregates(frame(rows), cutoffs, PROPERTY_SPEC)
    shuffled = frame(rows).sample(fraction=1.0, shuffle=True, seed=seed)
    assert_frame_equal(
        cutoff_aggregates(shuffled, cutoffs, PROPERTY_SPEC), ordered, check_exact=True
    )


@settings(max_examples=150, deadline=None)
@given(rows=event_rows(), later=event_rows(24 * 10, 24 * 30), days=cutoff_days)
def test_events_at_or_after_a_cutoff_never_change_its_features(
    rows: list[tuple], later: list[tuple], days: list[int]
) -> None:
    # Cutoffs up to day 10; the added events are at day 10 or later.
    cutoffs = [BASE + timedelta(days=min(d, 10)) for d in days]
    rows = [r for r in rows if r[1] < BASE + timedelta(days=10)]
    before = cutoff_aggregates(frame(rows), cutoffs, PROPERTY_SPEC)
    after = cutoff_aggregates(frame(rows + later), cutoffs, PROPERTY_SPEC)
    assert_frame_equal(after, before, check_exact=True)


@settings(max_examples=100, deadline=None)
@given(rows=event_rows(), days=cutoff_days, some=st.sets(st.sampled_from(CUSTOMERS)))
def test_a_customers_features_ignore_other_customers(
    rows: list[tuple], days: list[int], some: set[str]
) -> None:
    # What lets partitions of customers be built apart, bit for bit.
    cutoffs = [BASE + timedelta(days=d) for d in days]
    everyone = cutoff_aggregates(frame(rows), cutoffs, PROPERTY_SPEC)
    alone = cutoff_aggregates(frame([r for r in rows if r[0] in some]), cutoffs, PROPERTY_SPEC)
    mine = everyone.filter(pl.col("customer_id").is_in(sorted(some)))
    assert_frame_equal(alone, mine, check_exact=True)


@settings(max_examples=150, deadline=None)
@given(rows=event_rows(), days=cutoff_days)
def test_features_match_a_plain_python_reference(rows: list[tuple], days: list[int]) -> None:
    cutoffs = sorted(BASE + timedelta(days=d) for d in days)
    out = cutoff_aggregates(frame(rows), cutoffs, PROPERTY_SPEC)
    expected = [
        reference(sorted(r for r in rows if r[0] == customer and r[1] < cutoff), cutoff)
        for cutoff in cutoffs
        for customer in CUSTOMERS
        if any(r[0] == customer and r[1] < cutoff for r in rows)
    ]
    assert out.height == len(expected)
    for got, want in zip(out.iter_rows(named=True), expected, strict=True):
        assert list(got) == list(want)
        for name, value in want.items():
            exact = value is None or isinstance(value, str | datetime)
            assert got[name] == (value if exact else pytest.approx(value)), name


def reference(history: list[tuple], cutoff: datetime) -> dict[str, Any]:
    """The features of one (customer, cutoff) straight from the definitions."""
    day = timedelta(days=1)
    amounts = [r[3] for r in history if r[3] is not None]
    out: dict[str, Any] = {
        "customer_id": history[0][0],
        "cutoff": cutoff,
        "days_since_last_event": (cutoff - history[-1][1]) / day,
        "days_since_first_event": (cutoff - history[0][1]) / day,
        "frequency": len(history),
        "raw_event_count": sum(r[2] for r in history),
        "amount__sum": sum(amounts),
        "amount__mean": statistics.fmean(amounts) if amounts else None,
    }
    for k in (1, 3):
        out[f"amount__lag_{k}"] = history[-k][3] if len(history) >= k else None
    for k in (1, 3):
        enough = len(history) > k
        out[f"days_between_events__lag_{k}"] = (
            (history[-k][1] - history[-k - 1][1]) / day if enough else None
        )
    for name, days in PROPERTY_SPEC.windows:
        inside = [r for r in history if r[1] >= cutoff - timedelta(days=days)]
        values = [r[3] for r in inside if r[3] is not None]
        raw = sum(r[2] for r in inside)
        out[f"events__count__{name}"] = len(inside)
        out[f"amount__sum__{name}"] = sum(values)
        out[f"amount__mean__{name}"] = statistics.fmean(values) if values else None
        out[f"amount__std__{name}"] = statistics.stdev(values) if len(values) > 1 else None
        out[f"amount__min__{name}"] = min(values, default=None)
        out[f"amount__max__{name}"] = max(values, default=None)
        out[f"channel__share__shop__{name}"] = sum(r[4] for r in inside) / raw if raw else None
        out[f"channel__share__web__{name}"] = sum(r[5] for r in inside) / raw if raw else None
    return out

"""Per-event features (granularity ``event``): hand-computed lags, gaps and windows on a small
log, half-open window bounds, nulls of first events, and, on generated logs, agreement with
a plain per-event loop, invariance to row order and no leakage from later events."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from workers.preprocessing.features import per_event
from workers.preprocessing.features.per_event import event_features, feature_columns
from workers.preprocessing.features.spec import FeatureSpec

SPEC = FeatureSpec(
    value_columns=("amount",), lag_periods=(1, 2), windows=(("2D", 2), ("7D", 7)), calendar=True
)
US = timedelta(microseconds=1)
D = datetime

# Customer A: days 1, 2, 3, 3.5, 5.5, 12.5 of Jan 2024 (a Monday first); the 4th amount is
# missing. Customer B overlaps A in time: its windows must not see A's events. B's last event
# is 1 µs after 2024-01-08 06:00, so B4 (2 days before that instant) and B1 (7 days before)
# fall just outside its 2D and 7D windows.
EVENTS = [
    ("A", D(2024, 1, 1, 0), 10.0),  # A1
    ("A", D(2024, 1, 2, 0), 20.0),  # A2
    ("A", D(2024, 1, 3, 0), 30.0),  # A3
    ("A", D(2024, 1, 3, 12), None),  # A4
    ("A", D(2024, 1, 5, 12), 40.0),  # A5
    ("A", D(2024, 1, 12, 12), 50.0),  # A6
    ("B", D(2024, 1, 1, 6), 5.0),  # B1
    ("B", D(2024, 1, 1, 18), 7.0),  # B2
    ("B", D(2024, 1, 2, 6), 9.0),  # B3
    ("B", D(2024, 1, 6, 6), 1.0),  # B4, a Saturday
    ("B", D(2024, 1, 7, 18), 3.0),  # B5, a Sunday
    ("B", D(2024, 1, 8, 6) + US, 4.0),  # B6
]
N = None
R2, R50 = math.sqrt(2), math.sqrt(50)
# fmt: off
EXPECTED: dict[str, list[float | int | None]] = {
    # gap to the previous event, in days
    "days_since_previous_event": [N, 1, 1, 0.5, 2, 7,
                                  N, 0.5, 0.5, 4, 1.5, 0.5 + 1 / 86_400e6],
    # gap between the 1st and 2nd previous events = the previous row's days_since_previous
    "days_between_events__lag_1": [N, N, 1, 1, 0.5, 2, N, N, 0.5, 0.5, 4, 1.5],
    "days_between_events__lag_2": [N, N, N, 1, 1, 0.5, N, N, N, 0.5, 0.5, 4],
    "amount__lag_1": [N, 10, 20, 30, N, 40, N, 5, 7, 9, 1, 3],  # A5's previous is A4 (null)
    "amount__lag_2": [N, N, 10, 20, 30, N, N, N, 5, 7, 9, 1],
    # 2D windows [ts - 2 days, ts):
    # A2 {A1}; A3 {A1 (exactly 2D before: in), A2}; A4 {A2, A3}; A5 {A4 (exactly 2D, null
    # amount)}; A6 {}. B2 {B1}; B3 {B1, B2}; B4 {}; B5 {B4}; B6 {B5} (B4 is 2D + 1 µs before).
    "events__count__2D": [0, 1, 2, 2, 1, 0, 0, 1, 2, 0, 1, 1],
    "amount__sum__2D": [0, 10, 30, 50, 0, 0, 0, 5, 12, 0, 1, 3],
    "amount__mean__2D": [N, 10, 15, 25, N, N, N, 5, 6, N, 1, 3],
    # {10, 20}: sqrt((25 + 25) / 1); {5, 7}: sqrt((1 + 1) / 1)
    "amount__std__2D": [N, N, R50, R50, N, N, N, N, R2, N, N, N],
    "amount__min__2D": [N, 10, 10, 20, N, N, N, 5, 5, N, 1, 3],
    "amount__max__2D": [N, 10, 20, 30, N, N, N, 5, 7, N, 1, 3],
    # 7D windows: A4 {A1, A2, A3}; A5 {A1..A4}; A6 {A5 (exactly 7D before)}.
    # B4 {B1, B2, B3}; B5 {B1..B4}; B6 {B2..B5} (B1 is 7D + 1 µs before).
    "events__count__7D": [0, 1, 2, 3, 4, 1, 0, 1, 2, 3, 4, 4],
    "amount__sum__7D": [0, 10, 30, 60, 60, 40, 0, 5, 12, 21, 22, 20],
    "amount__mean__7D": [N, 10, 15, 20, 20, 40, N, 5, 6, 7, 5.5, 5],
    # {10, 20, 30}: sqrt(200 / 2) = 10; {5, 7, 9}: sqrt(8 / 2) = 2;
    # {5, 7, 9, 1}: mean 5.5, sqrt((0.25 + 2.25 + 12.25 + 20.25) / 3) = sqrt(35 / 3);
    # {7, 9, 1, 3}: mean 5, sqrt((4 + 16 + 16 + 4) / 3) = sqrt(40 / 3)
    "amount__std__7D": [N, N, R50, 10, 10, N, N, N, R2, 2, math.sqrt(35 / 3),
                        math.sqrt(40 / 3)],
    "amount__min__7D": [N, 10, 10, 10, 10, 40, N, 5, 5, 5, 1, 1],
    "amount__max__7D": [N, 10, 20, 30, 30, 40, N, 5, 7, 9, 9, 9],
}
# fmt: on


def log(rows: list[tuple[str, datetime, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"customer_id": pl.String, "ts": pl.Datetime("us"), "amount": pl.Float64},
        orient="row",
    )


@contextmanager
def small_chunks(rows: int, key_limit: int) -> Iterator[None]:
    """Force many chunks (and few customers per chunk) on small logs."""
    saved = per_event.CHUNK_ROWS, per_event.KEY_LIMIT
    per_event.CHUNK_ROWS, per_event.KEY_LIMIT = rows, key_limit
    try:
        yield
    finally:
        per_event.CHUNK_ROWS, per_event.KEY_LIMIT = saved


def test_hand_computed_lags_gaps_and_windows() -> None:
    out = event_features(log(EVENTS), SPEC)
    assert out.columns == ["customer_id", "ts", *feature_columns(SPEC)]
    assert out["customer_id"].to_list() == ["A"] * 6 + ["B"] * 6
    assert out["ts"].to_list() == [ts for _, ts, _ in EVENTS]
    for name, expected in EXPECTED.items():
        got = out[name].to_list()
        assert [g is None for g in got] == [e is None for e in expected], name
        assert [g for g in got if g is not None] == pytest.approx(
            [e for e in expected if e is not None], rel=1e-12
        ), name
    assert out["events__count__7D"].dtype == pl.UInt32


def test_calendar_parts_of_the_event_itself() -> None:
    out = event_features(log(EVENTS), SPEC)
    b4, b5 = out.row(9, named=True), out.row(10, named=True)  # Sat 06:00, Sun 18:00
    assert (b4["event__dayofweek"], b4["event__is_weekend"], b4["event__hour"]) == (5, 1, 6)
    assert (b5["event__dayofweek"], b5["event__is_weekend"], b5["event__hour"]) == (6, 1, 18)
    a1 = out.row(0, named=True)  # Monday 2024-01-01 00:00
    assert [a1[f"event__{p}"] for p in ("year", "quarter", "month", "day", "dayofweek")] == [
        2024,
        1,
        1,
        1,
        0,
    ]
    assert a1["event__is_weekend"] == 0
    assert (a1["event__month_sin"], a1["event__month_cos"]) == (0.0, 1.0)
    assert b4["event__hour_sin"] == pytest.approx(1.0)  # 6 h: a quarter turn
    assert b4["event__dayofweek_sin"] == pytest.approx(math.sin(2 * math.pi * 5 / 7), abs=1e-7)
    # Before the epoch (negative microseconds): floor, not truncation, of days and hours.
    early = event_features(log([("C", D(1969, 12, 31, 23, 59), 1.0)]), SPEC).row(0, named=True)
    assert [early[f"event__{p}"] for p in ("year", "month", "day", "dayofweek", "hour")] == [
        1969,
        12,
        31,
        2,  # a Wednesday
        23,
    ]
    no_calendar = FeatureSpec(value_columns=("amount",), calendar=False)
    assert not any(c.startswith("event__") for c in feature_columns(no_calendar))


def test_first_events_have_null_history_and_empty_windows() -> None:
    out = event_features(log(EVENTS), SPEC).filter(
        pl.col("ts") == pl.col("ts").min().over("customer_id")
    )
    assert out.height == 2
    history = [c for c in out.columns if "lag" in c or c.startswith("days_since")]
    assert all(out[c].null_count() == 2 for c in history)
    assert out["events__count__7D"].to_list() == [0, 0]
    assert out["amount__sum__7D"].to_list() == [0.0, 0.0]
    assert out["amount__mean__7D"].null_count() == 2


def test_nan_is_missing_and_input_order_does_not_matter() -> None:
    shuffled = log(EVENTS).reverse().with_columns(pl.col("amount").fill_null(float("nan")))
    assert_frame_equal(event_features(shuffled, SPEC), event_features(log(EVENTS), SPEC))


def test_same_time_events_and_missing_columns_are_refused() -> None:
    twice = log([*EVENTS, ("A", D(2024, 1, 3, 0), 1.0)])
    with pytest.raises(ValueError, match="not merged"):
        event_features(twice, SPEC)
    with pytest.raises(ValueError, match="amount"):
        event_features(log(EVENTS).drop("amount"), SPEC)
    with pytest.raises(ValueError, match="null"):
        event_features(log([*EVENTS, ("C", None, 1.0)]), SPEC)  # type: ignore[list-item]


def test_empty_log_gives_the_columns() -> None:
    out = event_features(log([]), SPEC)
    assert out.height == 0
    assert out.columns == ["customer_id", "ts", *feature_columns(SPEC)]


def test_chunks_of_whole_customers_give_the_same_features() -> None:
    whole = event_features(log(EVENTS), SPEC)
    # Chunks hold whole customers: 4 rows per chunk still keeps A's 6 events together; the
    # tiny key limit allows one customer per chunk.
    with small_chunks(rows=4, key_limit=1):
        assert_frame_equal(event_features(log(EVENTS), SPEC), whole)


# ---------------------------------------------------------------------- generated logs

START = D(2024, 1, 1)
SMALL = FeatureSpec(
    value_columns=("amount",), lag_periods=(1, 3), windows=(("1D", 1), ("3D", 3)), calendar=True
)


@st.composite
def logs(draw: st.DrawFn) -> pl.DataFrame:
    """Up to 4 customers, times on a 6-hour grid (so events fall exactly on window bounds),
    a few missing amounts."""
    rows = []
    for customer in draw(st.lists(st.sampled_from("pqrs"), min_size=1, max_size=4, unique=True)):
        slots = draw(st.lists(st.integers(0, 40), min_size=1, max_size=12, unique=True))
        for slot in slots:
            amount = draw(st.none() | st.floats(-100, 100).map(lambda x: round(x, 2)))
            rows.append((customer, START + timedelta(hours=6 * slot), amount))
    return log(rows)


def reference(frame: pl.DataFrame, spec: FeatureSpec) -> dict[str, list[object]]:
    """The features by their definition, one event at a time (no calendar)."""
    out: dict[str, list[object]] = {c: [] for c in feature_columns(spec)}
    for (_,), group in frame.sort("customer_id", "ts").group_by("customer_id", maintain_order=True):
        times, amounts = group["ts"].to_list(), group["amount"].to_list()
        for i, now in enumerate(times):
            gaps = [(times[j] - times[j - 1]) / timedelta(days=1) for j in range(1, i + 1)]
            out["days_since_previous_event"].append(gaps[-1] if gaps else None)
            for k in spec.lag_periods:
                out[f"days_between_events__lag_{k}"].append(gaps[-1 - k] if i > k else None)
                out[f"amount__lag_{k}"].append(amounts[i - k] if i >= k else None)
            for name, days in spec.windows:
                inside = [j for j in range(i) if now - timedelta(days=days) <= times[j] < now]
                values = [amounts[j] for j in inside if amounts[j] is not None]
                out[f"events__count__{name}"].append(len(inside))
                out[f"amount__sum__{name}"].append(float(sum(values)))
                out[f"amount__mean__{name}"].append(statistics.mean(values) if values else None)
                std = statistics.stdev(values) if len(values) > 1 else None
                out[f"amount__std__{name}"].append(std)
                out[f"amount__min__{name}"].append(min(values) if values else None)
                out[f"amount__max__{name}"].append(max(values) if values else None)
    return {name: values for name, values in out.items() if not name.startswith("event__")}


@settings(max_examples=60, deadline=None)
@given(logs(), st.randoms(use_true_random=False))
def test_agrees_with_a_per_event_loop_and_ignores_row_order(
    frame: pl.DataFrame, generator: random.Random
) -> None:
    out = event_features(frame, SMALL)
    expected = reference(frame, SMALL)
    for name, values in expected.items():
        got = out[name].to_list()
        assert [g is None for g in got] == [e is None for e in values], name
        pairs = [(g, e) for g, e in zip(got, values, strict=True) if e is not None]
        assert all(g == pytest.approx(e, rel=1e-9, abs=1e-9) for g, e in pairs), name
    ts = out["ts"].dt
    parts = {"year": ts.year(), "month": ts.month(), "day": ts.day(), "hour": ts.hour()}
    for part, expected_part in parts.items():
        assert out[f"event__{part}"].to_list() == expected_part.to_list()
    assert out["event__dayofweek"].to_list() == (ts.weekday() - 1).to_list()
    order = list(range(frame.height))
    generator.shuffle(order)
    assert_frame_equal(event_features(frame[order], SMALL), out)
    with small_chunks(rows=3, key_limit=2**62):
        assert_frame_equal(event_features(frame[order], SMALL), out)


@settings(max_examples=60, deadline=None)
@given(logs(), st.integers(0, 40))
def test_later_events_do_not_change_earlier_rows(frame: pl.DataFrame, cut: int) -> None:
    # The log as it was known at `cut`, then with the later events appended.
    moment = START + timedelta(hours=6 * cut)
    before = frame.filter(pl.col("ts") < moment)
    full = event_features(frame, SMALL).filter(pl.col("ts") < moment)
    assert_frame_equal(event_features(before, SMALL), full, check_exact=True)

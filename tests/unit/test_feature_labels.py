"""cutoff_labels: churn, future_sum and next_event_type over [cutoff, cutoff + horizon), by
hand, with horizons past the end of the data excluded and counted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from api_client.feature_params import ChurnLabel, FutureSumLabel, NextEventTypeLabel
from workers.preprocessing.features.labels import cutoff_labels

T = datetime(2024, 3, 1)  # horizon 7D: [Mar 1, Mar 8)
LATER = datetime(2024, 3, 5)  # horizon [Mar 5, Mar 12): past the data (ends Mar 8)
DATA_END = datetime(2024, 3, 8)
CHURN = ChurnLabel(kind="churn", horizon="7D")
FUTURE_SUM = FutureSumLabel(kind="future_sum", column="amount", horizon="1W", name="spend")
NEXT_TYPE = NextEventTypeLabel(kind="next_event_type", column="channel", horizon="7D")
# (customer, ts, amount, rows with channel shop, rows with channel web)
EVENTS = [
    ("a", datetime(2024, 2, 20), 500.0, 1, 0),  # before T: never read
    ("a", datetime(2024, 3, 1), 2.0, 1, 2),  # exactly at T: in; first event: web (2 rows)
    ("a", datetime(2024, 3, 3), 5.0, 1, 0),
    ("a", datetime(2024, 3, 8), 100.0, 0, 1),  # exactly at T + 7D: out
    ("b", datetime(2024, 2, 25), 1.0, 1, 0),
    ("b", datetime(2024, 3, 8), 9.0, 1, 0),  # out: b churns
    ("c", datetime(2024, 2, 1), 1.0, 0, 1),
    ("c", datetime(2024, 3, 7, 23, 59, 59), 3.0, 1, 1),  # in; a tie: shop (smallest value)
    ("c", datetime(2024, 3, 7, 23, 59, 59, 999999), None, 0, 0),  # in, null amount
]
PAIRS = [("a", T), ("b", T), ("c", T), ("a", LATER), ("b", LATER), ("c", LATER)]


def frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, ts, 1 + shop + web, amount, shop, web) for c, ts, amount, shop, web in rows],
        schema={
            "customer_id": pl.Utf8,
            "ts": pl.Datetime("us"),
            "n_events": pl.Int64,
            "amount": pl.Float64,
            "channel__is__shop": pl.Int64,
            "channel__is__web": pl.Int64,
        },
        orient="row",
    )


def customers(pairs: list[tuple[str, datetime]] = PAIRS) -> pl.DataFrame:
    return pl.DataFrame(
        pairs, schema={"customer_id": pl.Utf8, "cutoff": pl.Datetime("us")}, orient="row"
    )


def labels(label: Any, events: list[tuple[Any, ...]] = EVENTS) -> dict:
    """Label per customer at T (LATER's horizon runs past the data)."""
    out, counts = cutoff_labels(frame(events), [T, LATER], label, DATA_END, customers())
    assert counts == {"labelled": 3, "excluded_horizon_past_data": 3}
    assert out.columns == ["customer_id", "cutoff", label.name]
    assert out["cutoff"].to_list() == [T] * 3
    return dict(zip(out["customer_id"], out[label.name], strict=True))


def test_churn_is_no_event_in_the_half_open_horizon() -> None:
    # a: Mar 1 (at T: in), Mar 3; b: only Mar 8 (at T + 7D: out); c: Mar 7 23:59:59.
    assert labels(CHURN) == {"a": 0, "b": 1, "c": 0}
    out, _ = cutoff_labels(frame(EVENTS), [T, LATER], CHURN, DATA_END, customers())
    assert out.schema["label"] == pl.Int8


def test_future_sum_over_the_horizon() -> None:
    # a: 2 + 5 (not the 500 before T, nor the 100 at T + 7D); b: none; c: 3 + null.
    assert labels(FUTURE_SUM) == {"a": 7.0, "b": 0.0, "c": 3.0}


def test_next_event_type_is_the_first_events_main_value() -> None:
    # a: Mar 1 has shop 1, web 2 -> web; b: no event -> "none"; c: shop 1, web 1 -> shop.
    assert labels(NEXT_TYPE) == {"a": "web", "b": "none", "c": "shop"}
    custom = NEXT_TYPE.model_copy(update={"none_value": "quiet"})
    assert labels(custom)["b"] == "quiet"


def test_next_event_type_is_null_when_the_first_event_has_no_value() -> None:
    # a's first event in the horizon had no channel on any of its rows.
    blank = [(*e[:3], 0, 0) if e[1] == T else e for e in EVENTS]
    assert labels(NEXT_TYPE, blank)["a"] is None


def test_horizons_past_the_data_are_excluded_and_counted() -> None:
    # LATER + 7D = Mar 12 > Mar 8 + 1 day: excluded (never labelled churned), counted.
    out, counts = cutoff_labels(frame(EVENTS), [T, LATER], CHURN, DATA_END, customers())
    assert counts == {"labelled": 3, "excluded_horizon_past_data": 3}
    assert LATER not in out["cutoff"].to_list()
    # The limit is inclusive: T + 7D = Mar 8 = data_end + 1 day when the data end Mar 7.
    _, counts = cutoff_labels(
        frame(EVENTS), [T, LATER], CHURN, DATA_END - timedelta(days=1), customers()
    )
    assert counts == {"labelled": 3, "excluded_horizon_past_data": 3}
    # One microsecond earlier and T's horizon runs past the data too.
    end = DATA_END - timedelta(days=1, microseconds=1)
    out, counts = cutoff_labels(frame(EVENTS), [T, LATER], CHURN, end, customers())
    assert counts == {"labelled": 0, "excluded_horizon_past_data": 6}
    assert out.height == 0


def test_events_before_the_cutoff_never_change_a_label() -> None:
    earlier = [
        ("a", datetime(2024, 2, 29, 23, 59, 59, 999999), 1e9, 5, 0),
        ("b", datetime(2024, 1, 1), -7.0, 0, 3),
        ("d", datetime(2024, 2, 2), 4.0, 1, 0),
    ]
    for label in (CHURN, FUTURE_SUM, NEXT_TYPE):
        before, _ = cutoff_labels(frame(EVENTS), [T, LATER], label, DATA_END, customers())
        after, _ = cutoff_labels(frame(EVENTS + earlier), [T, LATER], label, DATA_END, customers())
        assert_frame_equal(after, before, check_exact=True)


def test_rows_follow_the_customers_frame_and_unknown_customers_have_no_event() -> None:
    pairs = [("c", T), ("zz", T), ("a", T)]
    out, counts = cutoff_labels(frame(EVENTS), [T], CHURN, DATA_END, customers(pairs))
    assert out.select("customer_id", "label").rows() == [("c", 0), ("zz", 1), ("a", 0)]
    assert counts == {"labelled": 3, "excluded_horizon_past_data": 0}


def test_refuses_cutoffs_it_was_not_given() -> None:
    with pytest.raises(ValueError, match="not in `cutoffs`"):
        cutoff_labels(frame(EVENTS), [T], CHURN, DATA_END, customers())


# A plain-Python reference on random logs.

BASE = datetime(2024, 1, 1)


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Events on the hour over 12 days (many exactly at a cutoff or a horizon's end)."""
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from("abc"), st.integers(0, 24 * 12)), unique=True, max_size=25
        )
    )
    return [
        (
            customer,
            BASE + timedelta(hours=hour),
            draw(st.none() | st.integers(-20, 20).map(float)),
            draw(st.integers(0, 2)),
            draw(st.integers(0, 2)),
        )
        for customer, hour in keys
    ]


@settings(max_examples=150, deadline=None)
@given(events=logs(), days=st.lists(st.integers(0, 12), min_size=1, max_size=3, unique=True))
def test_labels_match_a_plain_python_reference(
    events: list[tuple[Any, ...]], days: list[int]
) -> None:
    cutoffs = [BASE + timedelta(days=d) for d in days]
    pairs = [(c, t) for t in sorted(cutoffs) for c in "abc"]
    data_end = BASE + timedelta(days=8)
    horizon = timedelta(days=2)
    kept = [(c, t) for c, t in pairs if t + horizon <= data_end + timedelta(days=1)]
    for label in (
        ChurnLabel(kind="churn", horizon="2D"),
        FutureSumLabel(kind="future_sum", column="amount", horizon="2D"),
        NextEventTypeLabel(kind="next_event_type", column="channel", horizon="2D"),
    ):
        out, counts = cutoff_labels(frame(events), cutoffs, label, data_end, customers(pairs))
        assert counts == {
            "labelled": len(kept),
            "excluded_horizon_past_data": len(pairs) - len(kept),
        }
        assert out.select("customer_id", "cutoff").rows() == kept
        want: list[Any] = []
        for c, t in kept:
            inside = sorted(e for e in events if e[0] == c and t <= e[1] < t + horizon)
            if label.kind == "churn":
                want.append(int(not inside))
            elif label.kind == "future_sum":
                want.append(sum(e[2] for e in inside if e[2] is not None))
            elif not inside:
                want.append("none")
            else:
                shop, web = inside[0][3], inside[0][4]
                want.append(None if shop == web == 0 else "shop" if shop >= web else "web")
        assert out["label"].to_list() == want

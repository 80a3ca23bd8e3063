"""The feature job's front end: durations, cutoff schedules, params, and the prepared event
frame (merged same-time events, UTC times, refused logs)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api_client.errors import InvalidRequest
from api_client.feature_params import CutoffSchedule, duration_days
from api_client.schemas import validate_params
from workers.preprocessing.features.events import EventLogError, prepare_events
from workers.preprocessing.features.spec import cutoff_times


@pytest.mark.parametrize(("text", "days"), [("1D", 1), ("30D", 30), ("39W", 273), ("4W", 28)])
def test_durations(text: str, days: int) -> None:
    assert duration_days(text) == days


@pytest.mark.parametrize("text", ["0D", "-7D", "1M", "7d", "1.5D", "D", "30"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_days(text)
    params = {"dataset_id": 1, "customer_id_column": "c", "timestamp_column": "t",
              "cutoffs": ["2024-01-01"], "rolling_windows": [text]}  # fmt: skip
    with pytest.raises(InvalidRequest, match="rolling_windows"):
        validate_params("build_features", params)


def test_cutoff_schedules_are_anchored_at_from() -> None:
    monthly = CutoffSchedule.model_validate(
        {"every": "month", "from": "1997-04-15", "to": "1997-06-30"}
    )
    assert cutoff_times(monthly) == [
        datetime(1997, 4, 15),
        datetime(1997, 5, 15),
        datetime(1997, 6, 15),
    ]
    quarterly = CutoffSchedule.model_validate(
        {"every": "quarter", "from": "1997-01-01", "to": "1997-12-31"}
    )
    assert [c.month for c in cutoff_times(quarterly)] == [1, 4, 7, 10]
    # A list is sorted and de-duplicated; zoned times become naive UTC.
    zoned = [
        datetime.fromisoformat("1997-10-01T02:00:00+02:00"),
        datetime(1997, 9, 1),
        datetime(1997, 9, 1),
    ]
    assert cutoff_times(zoned) == [datetime(1997, 9, 1), datetime(1997, 10, 1)]  # fmt: skip


def test_monthly_steps_count_from_the_start_and_do_not_drift() -> None:
    schedule = CutoffSchedule.model_validate(
        {"every": "month", "from": "1997-01-31", "to": "1997-04-30T00:00:00Z"}
    )
    assert [c.day for c in cutoff_times(schedule)] == [31, 28, 31, 30]


def test_two_windows_of_one_length_are_refused() -> None:
    params = {"dataset_id": 1, "customer_id_column": "c", "timestamp_column": "t",
              "cutoffs": ["2024-01-01"], "rolling_windows": ["7D", "1W"]}  # fmt: skip
    with pytest.raises(InvalidRequest, match="same length"):
        validate_params("build_features", params)


def test_params_that_contradict_themselves_are_refused() -> None:
    base = {"dataset_id": 1, "customer_id_column": "c", "timestamp_column": "t"}
    with pytest.raises(InvalidRequest, match="cutoffs"):
        validate_params("build_features", base)  # per-cutoff rows need cutoffs
    with pytest.raises(InvalidRequest, match="label"):
        validate_params(
            "build_features",
            {**base, "granularity": "event", "label": {"kind": "churn", "horizon": "30D"}},
        )
    with pytest.raises(InvalidRequest, match="before"):
        validate_params(
            "build_features",
            {**base, "cutoffs": {"every": "month", "from": "1998-01-01", "to": "1997-01-01"}},
        )


def log(**columns: list[object]) -> pl.DataFrame:
    return pl.DataFrame(columns, strict=False)


def test_same_time_events_are_merged() -> None:
    frame = log(
        c=["a", "a", "a", "b"],
        t=["2024-01-01 10:00", "2024-01-01 10:00", "2024-01-02", "2024-01-01"],
        v=[1.0, 2.0, None, None],
        kind=["web", "store", "web", None],
    )
    prepared = prepare_events(frame, "c", "t", ["v"], ["kind"])
    events = prepared.events
    assert events.columns == [
        "customer_id",
        "ts",
        "n_events",
        "v",
        "kind__is__store",
        "kind__is__web",
    ]
    assert events.rows() == [
        ("a", datetime(2024, 1, 1, 10), 2, 3.0, 1, 1),  # 1 + 2; one row of each kind
        ("a", datetime(2024, 1, 2), 1, None, 0, 1),  # all values missing: null, not 0
        ("b", datetime(2024, 1, 1), 1, None, 0, 0),
    ]
    assert prepared.category_values == {"kind": ("store", "web")}


def test_zoned_times_become_naive_utc_and_rows_without_a_key_are_counted() -> None:
    frame = log(
        c=["a", None, "a"],
        t=["2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
        v=[1, 2, 3],
    )
    prepared = prepare_events(frame, "c", "t", ["v"], [])
    assert prepared.events["ts"].to_list() == [datetime(2024, 1, 1), datetime(2024, 1, 2)]
    assert prepared.rows_without_key == 1 and prepared.rows_in == 3


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        (log(c=["a"], t=["2024-01-01"], v=[1]), "column_missing", "'w'"),
        (
            log(c=["a", "b"], t=["2024-01-01", "soon"], w=[1, 2]),
            "timestamp_unparseable",
            "rows [1]",
        ),
        (
            log(
                c=["a", "b", "c"], t=["2024-01-01 10:00Z", "2024-01-01", "2024-01-02"], w=[1, 2, 3]
            ),
            "timestamp_timezone_mixed",
            "rows [0]",
        ),
        (log(c=["a"], t=["2024-01-01"], w=["x"]), "column_type_mismatch", "'w'"),
    ],
)
def test_refused_logs(frame: pl.DataFrame, code: str, words: str) -> None:
    with pytest.raises(EventLogError) as refused:
        prepare_events(frame, "c", "t", ["w"], [])
    assert refused.value.code == code and words in str(refused.value)


def test_nan_is_missing_and_a_date_alone_is_not_zoned() -> None:
    frame = log(c=["a", "a"], t=["01-12-1997 10:00", "01-12-1997 10:00"], w=[float("nan"), 2.0])
    with pytest.raises(EventLogError) as refused:  # day-first text: not a time we guess
        prepare_events(frame, "c", "t", ["w"], [])
    assert refused.value.code == "timestamp_unparseable"
    iso = log(c=["a", "a"], t=["1997-12-01", "1997-12-01"], w=[float("nan"), 2.0])
    assert prepare_events(iso, "c", "t", ["w"], []).events["w"].to_list() == [2.0]
    only_nan = log(c=["a"], t=["1997-12-01"], w=[float("nan")])
    assert prepare_events(only_nan, "c", "t", ["w"], []).all_missing_value_columns == ["w"]


def test_an_all_missing_value_column_is_reported() -> None:
    prepared = prepare_events(log(c=["a"], t=["2024-01-01"], w=[None]), "c", "t", ["w"], [])
    assert prepared.all_missing_value_columns == ["w"]
    as_text = pl.DataFrame({"c": ["a"], "t": ["2024-01-01"], "w": pl.Series([None], dtype=pl.Utf8)})
    assert prepare_events(as_text, "c", "t", ["w"], []).all_missing_value_columns == ["w"]


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(6))))
def test_preparation_does_not_depend_on_row_order(order: list[int]) -> None:
    rows = [
        ("a", "2024-01-01", 1.0),
        ("a", "2024-01-01", 2.5),
        ("a", "2024-01-03", 4.0),
        ("b", "2024-01-02", 8.0),
        ("b", "2024-01-02", None),
        ("c", "2024-01-05", 0.5),
    ]
    frame = log(
        c=[rows[i][0] for i in order], t=[rows[i][1] for i in order], v=[rows[i][2] for i in order]
    )
    reference = prepare_events(log(c=[r[0] for r in rows], t=[r[1] for r in rows],
                                   v=[r[2] for r in rows]), "c", "t", ["v"], [])  # fmt: skip
    assert prepare_events(frame, "c", "t", ["v"], []).events.equals(reference.events)

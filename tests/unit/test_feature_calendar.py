"""Calendar features of the last event and the cutoff: date parts, weekends, business days,
US holidays (distances to the next and previous one) and cyclical encodings."""

from __future__ import annotations

import math
from datetime import datetime

import polars as pl
import pytest

from workers.preprocessing.features.calendar import calendar_features, check_country
from workers.preprocessing.features.spec import FeatureSpec


def last_events(*rows: tuple[str, datetime, datetime]) -> pl.DataFrame:
    customers, cutoffs, lasts = zip(*rows, strict=True)
    return pl.DataFrame(
        {"customer_id": customers, "cutoff": cutoffs, "last_event_ts": lasts},
        schema={"customer_id": pl.Utf8, "cutoff": pl.Datetime("us"),
                "last_event_ts": pl.Datetime("us")},
    )  # fmt: skip


def row(frame: pl.DataFrame, index: int, prefix: str) -> dict[str, object]:
    return {
        name.removeprefix(f"{prefix}__"): value
        for name, value in frame.row(index, named=True).items()
        if name.startswith(f"{prefix}__")
    }


def test_parts_and_us_holidays_of_known_dates() -> None:
    frame = last_events(
        # Friday 1997-07-04 15:00 (Independence Day) before the cutoff Monday 1997-07-07.
        ("a", datetime(1997, 7, 7), datetime(1997, 7, 4, 15)),
        # Saturday 1997-07-05 before Wednesday 1997-12-31 13:00.
        ("b", datetime(1997, 12, 31, 13), datetime(1997, 7, 5, 9)),
    )
    out = calendar_features(frame, FeatureSpec(holidays_country="US"))
    assert out.select("customer_id", "cutoff").equals(frame.select("customer_id", "cutoff"))
    friday = row(out, 0, "last_event")
    assert {k: friday[k] for k in ("year", "quarter", "month", "day", "dayofweek", "hour")} == {
        "year": 1997, "quarter": 3, "month": 7, "day": 4, "dayofweek": 4, "hour": 15,
    }  # fmt: skip
    # A holiday on a weekday: not a weekend, not a business day; 0 days to and from it.
    assert (friday["is_weekend"], friday["is_business_day"], friday["is_holiday"]) == (0, 0, 1)
    assert (friday["days_to_holiday"], friday["days_from_holiday"]) == (0, 0)
    monday = row(out, 0, "cutoff")
    assert (monday["dayofweek"], monday["is_business_day"], monday["is_holiday"]) == (0, 1, 0)
    # Back to 07-04: 3 days. Ahead to Labor Day 09-01: 24 (rest of July) + 31 (August) + 1 = 56.
    assert (monday["days_from_holiday"], monday["days_to_holiday"]) == (3, 56)
    saturday = row(out, 1, "last_event")
    assert (saturday["dayofweek"], saturday["is_weekend"], saturday["is_business_day"]) == (5, 1, 0)
    # 07-05 -> 09-01: 26 (rest of July) + 31 + 1 = 58.
    assert (saturday["days_from_holiday"], saturday["days_to_holiday"]) == (1, 58)
    new_year_eve = row(out, 1, "cutoff")
    # Next: 1998-01-01 (the following year's holidays are looked up), 1 day; Christmas: 6 back.
    assert (new_year_eve["quarter"], new_year_eve["dayofweek"], new_year_eve["hour"]) == (4, 2, 13)
    assert (new_year_eve["days_to_holiday"], new_year_eve["days_from_holiday"]) == (1, 6)
    assert out.schema["last_event__is_holiday"] == pl.Int8
    assert out.schema["cutoff__days_to_holiday"] == pl.Int32


def test_cyclical_encodings() -> None:
    # Thursday 1997-04-10 18:00: month 4 -> 2π·3/12 = π/2; dayofweek 3 -> 2π·3/7; hour 18 ->
    # 2π·18/24 = 3π/2. Cutoff Monday 1997-01-06 00:00: all angles 0.
    frame = last_events(("a", datetime(1997, 1, 6), datetime(1997, 4, 10, 18)))
    out = calendar_features(frame, FeatureSpec())
    last, cutoff = row(out, 0, "last_event"), row(out, 0, "cutoff")
    assert (last["month_sin"], last["month_cos"]) == pytest.approx((1.0, 0.0), abs=1e-12)
    assert last["dayofweek_sin"] == pytest.approx(math.sin(6 * math.pi / 7))
    assert last["dayofweek_cos"] == pytest.approx(math.cos(6 * math.pi / 7))
    assert (last["hour_sin"], last["hour_cos"]) == pytest.approx((-1.0, 0.0), abs=1e-12)
    for part in ("month", "dayofweek", "hour"):
        assert (cutoff[f"{part}_sin"], cutoff[f"{part}_cos"]) == pytest.approx((0.0, 1.0))


def test_without_a_country_business_days_are_weekdays() -> None:
    # 1997-07-04 is a holiday in the US but with no country it is just a Friday.
    frame = last_events(("a", datetime(1997, 7, 5), datetime(1997, 7, 4, 15)))
    out = calendar_features(frame, FeatureSpec())
    assert not [c for c in out.columns if "holiday" in c]
    assert out["last_event__is_business_day"].to_list() == [1]
    assert out["cutoff__is_business_day"].to_list() == [0]  # Saturday
    assert len(out.columns) == 2 + 2 * 14


def test_calendar_off_gives_the_keys_only() -> None:
    frame = last_events(("a", datetime(1997, 7, 5), datetime(1997, 7, 4, 15)))
    assert calendar_features(frame, FeatureSpec(calendar=False)).columns == [
        "customer_id", "cutoff",
    ]  # fmt: skip


def test_unknown_country_is_refused() -> None:
    check_country("US")
    check_country("de")  # codes are matched in upper case
    with pytest.raises(ValueError, match=r"'XX' is not a country.*US, GB"):
        check_country("XX")
    frame = last_events(("a", datetime(1997, 7, 5), datetime(1997, 7, 4, 15)))
    with pytest.raises(ValueError, match="holidays_country 'XX'"):
        calendar_features(frame, FeatureSpec(holidays_country="XX"))

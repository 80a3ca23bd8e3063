"""Temporal metrics: daily volume, gaps, trend, seasonality, change points (with a false-alarm
rate checked by simulation) and period breaks."""

from __future__ import annotations

import numpy as np
import pytest

from workers.preprocessing.quality import temporal as t


def days(*dates: str) -> np.ndarray:
    return np.array(dates, dtype="datetime64[ns]")


def test_daily_counts_missing_days_and_largest_gap() -> None:
    # Jan 1 (2 events), Jan 3, Jan 7: counts [2, 0, 1, 0, 0, 0, 1].
    first, counts = t.daily_counts(days("2024-01-01", "2024-01-01", "2024-01-03", "2024-01-07"))
    assert str(first) == "2024-01-01"
    assert counts.tolist() == [2, 0, 1, 0, 0, 0, 1]
    assert t.missing_day_share(counts) == pytest.approx(4 / 7)
    assert t.largest_gap(counts) == (3, 3)  # Jan 4..6
    assert t.largest_gap(np.array([1, 1])) == (0, -1)


def test_trend_of_a_straight_line() -> None:
    # 10, 11, ..., 109: Theil-Sen slope 1/day; mean 59.5 -> 365 / 59.5 per year.
    trend = t.trend(10 + np.arange(100))
    assert trend.direction == "up"
    assert trend.kendall_tau == pytest.approx(1.0)
    assert trend.slope_per_year == pytest.approx(365 / 59.5)
    assert t.trend(np.full(50, 7)).direction == "flat"


def test_trend_is_flat_for_noise() -> None:
    noise = np.random.default_rng(3).poisson(100, 365)
    assert t.trend(noise).direction == "flat"


def test_weekly_seasonality_strength() -> None:
    # A pure weekly pattern: the remainder is 0 -> strength 1.
    pattern = np.tile([10, 10, 10, 10, 10, 2, 2], 10).astype(float)
    assert t.weekly_strength(np.datetime64("2024-01-01"), pattern) == pytest.approx(1.0)
    noise = np.random.default_rng(4).normal(100, 5, 700)
    strength = t.weekly_strength(np.datetime64("2024-01-01"), noise)
    assert strength is not None and strength < 0.1
    assert t.weekly_strength(np.datetime64("2024-01-01"), np.ones(10)) is None  # < 2 weeks


def test_annual_seasonality_needs_two_years_and_finds_a_yearly_wave() -> None:
    assert t.annual_strength(np.datetime64("2024-01-01"), np.ones(700)) is None
    day = np.arange(3 * 364)
    wave = (
        100 + 40 * np.sin(2 * np.pi * day / 364) + np.random.default_rng(5).normal(0, 3, day.size)
    )
    strength = t.annual_strength(np.datetime64("2024-01-01"), wave)
    assert strength is not None and strength > 0.9


def test_change_point_found_where_the_level_steps() -> None:
    rng = np.random.default_rng(6)
    series = np.concatenate([rng.poisson(100, 60), rng.poisson(50, 60)])
    points = t.change_points(series)
    assert len(points) == 1 and abs(points[0] - 60) <= 2


def test_change_points_false_alarm_rate_is_low() -> None:
    """200 stationary Poisson(100) series of 365 days: how often is a change claimed?"""
    rng = np.random.default_rng(7)
    alarms = sum(bool(t.change_points(rng.poisson(100, 365))) for _ in range(200))
    assert alarms / 200 <= 0.05


def test_period_break_found_and_date_derived_columns_skipped() -> None:
    # 6 months x 2 values; months 1-2 are entirely value 1, elsewhere value 1 is 10%.
    table = np.array([[90, 10], [0, 100], [0, 100], [90, 10], [90, 10], [90, 10]])
    (found,) = t.period_breaks(table, ["known", "unknown"])
    assert (found.start, found.end, found.value) == (1, 2, "unknown")
    assert found.share == 1.0 and found.rows == 200
    assert found.elsewhere_share == pytest.approx(40 / 400)
    # One value per month everywhere (a month-name column): derived from the date, no break.
    derived = np.eye(6, dtype=int) * 100
    assert t.period_breaks(derived, [f"m{i}" for i in range(6)]) == []


def test_month_table_and_index() -> None:
    first, months = t.month_index(days("2024-01-15", "2024-03-01", "NaT"))
    assert str(first) == "2024-01" and months.tolist() == [0, 2, -1]
    table = t.month_table(months, np.array([0, 1, 1]), 3, 2)
    assert table.tolist() == [[1, 0], [0, 0], [0, 1]]

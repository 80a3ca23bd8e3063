"""Activity features of the daily event counts before each cutoff: Fourier coefficients, trend,
change score; rows, no leakage, row-order invariance, and a plain reference implementation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from workers.preprocessing.features import activity
from workers.preprocessing.features.activity import activity_columns, activity_features
from workers.preprocessing.features.spec import FeatureSpec

DAY = timedelta(days=1)
JAN = datetime(2024, 1, 1)


def events(*rows: tuple[str, datetime]) -> pl.DataFrame:
    """A prepared event frame (one merged event per row)."""
    return pl.DataFrame(
        {"customer_id": [c for c, _ in rows], "ts": [t for _, t in rows], "n_events": 1},
        schema={"customer_id": pl.Utf8, "ts": pl.Datetime("us"), "n_events": pl.Int64},
    ).sort("customer_id", "ts")


def daily(
    customer: str, counts: Sequence[int], first: datetime = JAN
) -> list[tuple[str, datetime]]:
    """``counts[i]`` events on day ``first + i``, one hour apart from 01:00."""
    return [
        (customer, first + i * DAY + timedelta(hours=1 + j))
        for i, count in enumerate(counts)
        for j in range(count)
    ]


def spec(days: int, **families: object) -> FeatureSpec:
    return FeatureSpec(windows=((f"{days}D", days),), **families)  # type: ignore[arg-type]


def by_customer(frame: pl.DataFrame, column: str) -> dict[str, object]:
    return dict(zip(frame["customer_id"], frame[column], strict=True))


def test_fourier_of_a_pure_cosine() -> None:
    # n = 4 days before 2024-01-05: counts x = [4, 2, 0, 2] = 2·(1 + cos(2πt/4)), N = 8, m = 2.
    # a_1 = (2/4)(4·1 + 2·0 + 0·(-1) + 2·0) = 2 -> a_1/m = 1;
    # b_1 = (2/4)(4·0 + 2·1 + 0·0 + 2·(-1)) = 0; a_2 = (2/4)(4 - 2 + 0 - 2) = 0; b_2: sin(πt) = 0.
    # "old" had its only event long before the window: zeros. "new" starts after the cutoff.
    frame = events(
        *daily("a", [4, 2, 0, 2]),
        ("old", datetime(2023, 6, 1)),
        ("new", datetime(2024, 1, 5)),
    )
    out = activity_features(frame, [datetime(2024, 1, 5)], spec(4, fourier_order=2))
    assert out.columns == [
        "customer_id", "cutoff", "activity__fourier_sin_1", "activity__fourier_cos_1",
        "activity__fourier_sin_2", "activity__fourier_cos_2",
    ]  # fmt: skip
    assert out["customer_id"].to_list() == ["a", "old"]
    a = out.row(0, named=True)
    assert a["activity__fourier_cos_1"] == pytest.approx(1.0)
    for name in ("fourier_sin_1", "fourier_sin_2", "fourier_cos_2"):
        assert a[f"activity__{name}"] == pytest.approx(0.0, abs=1e-12)
    assert out.row(1)[2:] == (0.0, 0.0, 0.0, 0.0)


def test_trend_of_linear_constant_and_noisy_series() -> None:
    # n = 5, t = 0..4, t̄ = 2, Σ(t - t̄)² = 10.
    # up [1..5]: Σ(t - t̄)x = -2 - 2 + 0 + 4 + 10 = 10 -> slope 1, R² 1, exact fit: sign 1.
    # flat [2]*5: slope 0, R² 0 (constant counts), sign 0.
    # noisy [0, 3, 0, 0, 1]: Σ(t - t̄)x = -3 + 2 = -1 -> slope -0.1; Σ(x - x̄)² = 10 - 16/5 = 6.8;
    # R² = 0.1·1 / 6.8; RSS = 6.8 - 0.1 = 6.7; SE = sqrt(6.7 / 3 / 10) ≈ 0.47 > 0.1: sign 0.
    # weak [0, 1, 2, 0, 2]: Σ(t - t̄)x = -1 + 4 = 3 -> slope 0.3; Σ(x - x̄)² = 9 - 25/5 = 4;
    # R² = 0.3·3 / 4 = 0.225; RSS = 4 - 0.9 = 3.1; SE = sqrt(3.1 / 3 / 10) ≈ 0.321 > 0.3: sign 0.
    frame = events(
        *daily("up", [1, 2, 3, 4, 5]),
        *daily("down", [5, 4, 3, 2, 1]),
        *daily("flat", [2, 2, 2, 2, 2]),
        *daily("noisy", [0, 3, 0, 0, 1]),
        *daily("weak", [0, 1, 2, 0, 2]),
    )
    out = activity_features(frame, [datetime(2024, 1, 6)], spec(5, trend=True))
    slope = by_customer(out, "activity__trend_slope")
    strength = by_customer(out, "activity__trend_strength")
    assert by_customer(out, "activity__trend_sign") == {
        "down": -1, "flat": 0, "noisy": 0, "up": 1, "weak": 0,
    }  # fmt: skip
    assert slope == pytest.approx(
        {"down": -1.0, "flat": 0.0, "noisy": -0.1, "up": 1.0, "weak": 0.3}
    )
    assert strength == pytest.approx(
        {"down": 1.0, "flat": 0.0, "noisy": 0.1 / 6.8, "up": 1.0, "weak": 0.225}
    )
    assert out.schema["activity__trend_sign"] == pl.Int8


def test_change_score_compares_the_two_halves() -> None:
    # n = 10 before 2024-01-11: 2 events a day on days 0..4 (n1 = 10), 6 a day on days 5..9
    # (n2 = 30): (30 - 10) / sqrt(40). Without events in the window: 0.
    frame = events(*daily("a", [2] * 5 + [6] * 5), ("quiet", datetime(2023, 1, 1)))
    out = activity_features(frame, [datetime(2024, 1, 11)], spec(10, change_points=True))
    assert by_customer(out, "activity__change_score") == pytest.approx(
        {"a": 20 / np.sqrt(40), "quiet": 0.0}
    )


FULL = {"fourier_order": 3, "trend": True, "change_points": True}
SOME = events(
    *daily("a", [1, 0, 3, 2, 0, 0, 1, 4, 1, 1, 0, 2]),
    *daily("b", [0, 2, 0, 0, 5, 1], first=datetime(2024, 1, 5)),
)
C1, C2 = datetime(2024, 1, 8, 12), datetime(2024, 1, 13)


def test_window_bounds() -> None:
    # n = 7 before C (noon, not midnight): day t is [C - (7 - t) days, C - (6 - t) days).
    # C - 7d is the window's first instant (t = 0); C - 7d - 1µs is outside; C - 3.5d - 1µs
    # and C - 3.5d are both on t = 3, either side of the halves' bound: x = [1, 0, 0, 2, 0, 0, 0].
    # Slope: Σ(t - 3)x = -3·1 + 0·2 = -3 over Σ(t - 3)² = 28. Halves: n1 = 2, n2 = 1.
    c, us = datetime(2024, 2, 1, 12), timedelta(microseconds=1)
    frame = events(("a", c - 7 * DAY), ("a", c - 7 * DAY - us), ("a", c - 3.5 * DAY - us),
                   ("a", c - 3.5 * DAY))  # fmt: skip
    out = activity_features(frame, [c], spec(7, **FULL)).row(0, named=True)
    assert out["activity__trend_slope"] == pytest.approx(-3 / 28)
    assert out["activity__change_score"] == pytest.approx((1 - 2) / np.sqrt(3))


def test_rows_are_customers_with_an_earlier_event_by_cutoff_then_customer() -> None:
    out = activity_features(SOME, [C2, C1, C2], spec(7, **FULL))
    assert out.select("cutoff", "customer_id").rows() == [
        (C1, "a"), (C1, "b"), (C2, "a"), (C2, "b"),
    ]  # fmt: skip
    assert out.columns[2:] == activity_columns(spec(7, **FULL))
    empty = activity_features(SOME, [datetime(2023, 1, 1)], spec(7, **FULL))
    assert empty.is_empty()
    assert empty.columns == out.columns
    assert activity_features(SOME, [C1], spec(7)).columns == ["customer_id", "cutoff"]


def test_events_at_or_after_the_cutoff_change_nothing() -> None:
    later = events(
        ("a", C2), ("a", C2 + timedelta(hours=5)), ("b", C2 + 40 * DAY), ("z", C2),
    )  # fmt: skip
    both = activity_features(SOME, [C1, C2], spec(7, **FULL))
    assert_frame_equal(activity_features(pl.concat([SOME, later]), [C1, C2], spec(7, **FULL)), both)
    at_c1 = events(("a", C1), ("b", C1 + timedelta(microseconds=1)), ("y", C1))
    assert_frame_equal(
        activity_features(pl.concat([SOME, at_c1, later]), [C1], spec(7, **FULL)),
        both.filter(pl.col("cutoff") == C1),
    )


def test_cutoffs_taken_a_few_at_a_time_give_the_same_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cutoffs = [JAN + i * timedelta(hours=7) for i in range(60)]
    whole = activity_features(SOME, cutoffs, spec(3, **FULL))
    monkeypatch.setattr(activity, "PAIR_ROWS", 5)  # a run of cutoffs holds ~5 (event, cutoff)
    assert_frame_equal(activity_features(SOME, cutoffs, spec(3, **FULL)), whole, check_exact=True)


def test_no_events_or_no_cutoffs() -> None:
    none = activity_features(SOME.clear(), [C1], spec(7, **FULL))
    assert none.is_empty()
    assert none.columns == ["customer_id", "cutoff", *activity_columns(spec(7, **FULL))]
    assert activity_features(SOME, [], spec(7, **FULL)).is_empty()


# Times on a 6-hour grid, so events often fall exactly on day, half-window and window bounds.
GRID = 6 * 60
EVENT_ROWS = st.lists(
    st.tuples(st.sampled_from("abc"), st.integers(0, 20 * 4).map(lambda i: i * GRID)),
    min_size=1, max_size=60, unique=True,
)  # fmt: skip
CUTOFFS = st.lists(st.integers(0, 25 * 4).map(lambda i: i * GRID), min_size=1, max_size=3)


def frame_of(rows: list[tuple[str, int]]) -> pl.DataFrame:
    return events(*[(c, JAN + timedelta(minutes=m)) for c, m in rows])


@settings(max_examples=60, deadline=None)
@given(EVENT_ROWS, CUTOFFS, st.integers(1, 9), st.integers(0, 3), st.randoms())
def test_row_order_does_not_matter(
    rows: list[tuple[str, int]], minutes: list[int], days: int, order: int, rng: object
) -> None:
    cutoffs = [JAN + timedelta(minutes=m) for m in minutes]
    shuffled = list(rows)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    scrambled = pl.DataFrame(
        {"customer_id": [c for c, _ in shuffled],
         "ts": [JAN + timedelta(minutes=m) for _, m in shuffled], "n_events": 1},
        schema={"customer_id": pl.Utf8, "ts": pl.Datetime("us"), "n_events": pl.Int64},
    )  # fmt: skip
    wanted = spec(days, fourier_order=order, trend=True, change_points=True)
    expected = activity_features(frame_of(rows), cutoffs, wanted)
    assert_frame_equal(activity_features(scrambled, cutoffs, wanted), expected, check_exact=True)


@settings(max_examples=60, deadline=None)
@given(EVENT_ROWS, CUTOFFS, st.integers(1, 9), st.integers(0, 3))
def test_matches_a_plain_reference(
    rows: list[tuple[str, int]], minutes: list[int], days: int, order: int
) -> None:
    cutoffs = [JAN + timedelta(minutes=m) for m in minutes]
    wanted = spec(days, fourier_order=order, trend=True, change_points=True)
    out = activity_features(frame_of(rows), cutoffs, wanted)
    expected = reference([(c, JAN + timedelta(minutes=m)) for c, m in rows], cutoffs, days, order)
    assert out.select("cutoff", "customer_id").rows() == [key for key, _ in expected]
    for got, (_, want) in zip(out.iter_rows(named=True), expected, strict=True):
        sign_is_clear = want.pop("sign_is_clear")
        if not sign_is_clear:
            want.pop("activity__trend_sign")
        assert {k: got[k] for k in want} == pytest.approx(want, abs=1e-9)


def reference(
    rows: list[tuple[str, datetime]], cutoffs: list[datetime], n: int, order: int
) -> list[tuple[tuple[datetime, str], dict[str, float]]]:
    """Loops over cutoffs and customers, day counts by date arithmetic, numpy's FFT and
    polyfit: the definitions of the module docstring, computed another way."""
    out = []
    for cutoff in sorted(set(cutoffs)):
        start = cutoff - n * DAY
        for customer in sorted({c for c, _ in rows}):
            times = [t for c, t in rows if c == customer]
            if min(times) >= cutoff:
                continue
            x = np.zeros(n)
            for t in times:
                if start <= t < cutoff:
                    x[(t - start) // DAY] += 1
            features = _fourier(x, order) | _trend(x)
            late = sum(cutoff - n * DAY / 2 <= t < cutoff for t in times)
            early = x.sum() - late
            features["activity__change_score"] = (late - early) / np.sqrt(x.sum()) if x.sum() else 0
            out.append(((cutoff, customer), features))
    return out


def _fourier(x: np.ndarray, order: int) -> dict[str, float]:
    spectrum, total, out = np.fft.fft(x), x.sum(), {}
    for k in range(1, order + 1):
        term = spectrum[k % len(x)]  # e^{-2πikt/n}: real part Σx cos, imaginary part -Σx sin
        out[f"activity__fourier_sin_{k}"] = -2 * term.imag / total if total else 0.0
        out[f"activity__fourier_cos_{k}"] = 2 * term.real / total if total else 0.0
    return out


def _trend(x: np.ndarray) -> dict[str, float]:
    n = len(x)
    if n < 2:
        return {"activity__trend_slope": 0.0, "activity__trend_strength": 0.0,
                "activity__trend_sign": 0, "sign_is_clear": True}  # fmt: skip
    t = np.arange(n)
    slope, intercept = np.polyfit(t, x, 1)
    residual = float(((x - slope * t - intercept) ** 2).sum())
    spread = float(((x - x.mean()) ** 2).sum())
    error = np.sqrt(residual / (n - 2) / ((t - t.mean()) ** 2).sum()) if n > 2 else np.inf
    return {
        "activity__trend_slope": slope,
        "activity__trend_strength": 1 - residual / spread if spread > 1e-12 else 0.0,
        "activity__trend_sign": int(np.sign(slope)) if abs(slope) > error else 0,
        "sign_is_clear": abs(abs(slope) - error) > 1e-9,
    }

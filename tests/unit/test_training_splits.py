"""make_split: every strategy with and without customer groups, the leakage rules, refusals.

The hand-checked table is 200 customers × 24 monthly cutoffs (2020-01-01 … 2021-12-01) with
a 273-day label horizon. 273 days span at most 8 later month starts (Jun 1 + 273 d = Mar 1),
so the gap is 8 cutoffs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import (
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from workers.training.splits import Split, SplitError, make_split

HORIZON = np.timedelta64(273, "D")
CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow_transactions.parquet"


def grid(n_customers: int = 200, n_cutoffs: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(customer per row, cutoff per row): every customer at every monthly cutoff."""
    months = pd.date_range("2020-01-01", periods=n_cutoffs, freq="MS").to_numpy()
    return np.repeat(np.arange(n_customers), n_cutoffs), np.tile(months, n_customers)


def series(**kw: Any) -> Split:
    customers, when = grid()
    options: dict[str, Any] = {
        "n_rows": len(when),
        "strategy": "time_series",
        "folds": 3,
        "holdout": 0.1,
        "seed": 0,
        "cutoffs": when,
        "horizon": HORIZON,
    }
    if kw.pop("grouped", False):
        options["groups"] = customers
    return make_split(**{**options, **kw})


def refusal(**kw: Any) -> SplitError:
    options: dict[str, Any] = {"strategy": "kfold", "folds": 3, "holdout": 0.2, "seed": 0}
    with pytest.raises(SplitError) as caught:
        make_split(**{**options, **kw})
    return caught.value


def check(
    split: Split,
    n_rows: int,
    *,
    groups: np.ndarray | None = None,
    cutoffs: np.ndarray | None = None,
    horizon: np.timedelta64 | None = None,
) -> None:
    """The properties every split must have, whatever its strategy."""
    train, held = split.train_rows, split.holdout_rows
    assert train.dtype == np.int64 and held.dtype == np.int64
    assert len(np.intersect1d(train, held)) == 0
    assert len(np.unique(train)) == len(train) and len(np.unique(held)) == len(held)
    assert np.all((train >= 0) & (train < n_rows)) and np.all((held >= 0) & (held < n_rows))
    assert np.all(np.diff(held) > 0)
    if not (split.description["strategy"] == "stratified_cv" and groups is None):
        assert np.all(np.diff(train) > 0)
    assert split.description["rows"] == {"train": len(train), "holdout": len(held)}
    json.dumps(split.description, allow_nan=False)
    for fit, validate in split.folds:
        assert fit.dtype == np.int64 and validate.dtype == np.int64
        assert len(fit) and len(validate)
        assert np.all(np.diff(fit) > 0) and np.all(np.diff(validate) > 0)
        assert len(np.intersect1d(fit, validate)) == 0
        assert fit.max() < len(train) and validate.max() < len(train) and fit.min() >= 0
    if groups is not None:
        assert not set(groups[train]) & set(groups[held])
        for fit, validate in split.folds:
            assert not set(groups[train][fit]) & set(groups[train][validate])
    if cutoffs is not None:
        assert horizon is not None
        assert cutoffs[train].max() + horizon <= cutoffs[held].min()
        for fit, validate in split.folds:
            assert cutoffs[train][fit].max() + horizon <= cutoffs[train][validate].min()


# ------------------------------------------------------------------ time_series


def test_time_series_hand_checked() -> None:
    """24 cutoffs, holdout 0.1 → the last round(2.4) = 2 are the holdout (2021-11, 2021-12).
    The pool ends at 2021-02-01 (+ 273 d = 2021-11-01); 2021-03 … 2021-10 (8) are the gap.
    Validation candidates: the pool cutoffs ≥ 2020-01-01 + 273 d = 2020-09-30, i.e.
    2020-10 … 2021-02 (5), in blocks of 2, 2, 1."""
    _, when = grid()
    split = series()
    check(split, len(when), cutoffs=when, horizon=HORIZON)
    pool = when <= np.datetime64("2021-02-01")
    assert np.array_equal(split.train_rows, np.flatnonzero(pool))
    assert np.array_equal(split.holdout_rows, np.flatnonzero(when >= np.datetime64("2021-11-01")))
    description = split.description
    assert description["gap_cutoffs"] == 8
    assert description["holdout_cutoffs"] == ["2021-11-01", "2021-12-01"]
    assert description["dropped_for_gap"] == 8 * 200
    assert description["rows"] == {"train": 14 * 200, "holdout": 2 * 200}
    assert description["horizon_days"] == 273
    windows = [(w["fit_cutoff_max"], w["validate_cutoff_min"]) for w in description["fold_windows"]]
    assert windows == [
        ("2020-01-01", "2020-10-01"),
        ("2020-03-01", "2020-12-01"),
        ("2020-05-01", "2021-02-01"),
    ]
    assert [(w["fit_rows"], w["validate_rows"]) for w in description["fold_windows"]] == [
        (200, 400),
        (600, 400),
        (1000, 200),
    ]


def test_time_series_grouped_keeps_customers_apart() -> None:
    customers, when = grid()
    split = series(grouped=True)
    check(split, len(when), groups=customers, cutoffs=when, horizon=HORIZON)
    held_customers = np.unique(customers[split.holdout_rows])
    assert len(held_customers) == 20  # ceil(0.1 · 200)
    # the holdout: exactly the held-out customers' rows at the two holdout cutoffs
    expected = np.isin(customers, held_customers) & (when >= np.datetime64("2021-11-01"))
    assert np.array_equal(split.holdout_rows, np.flatnonzero(expected))
    # the pool: every other customer's rows before the gap
    expected = ~np.isin(customers, held_customers) & (when <= np.datetime64("2021-02-01"))
    assert np.array_equal(split.train_rows, np.flatnonzero(expected))
    description = split.description
    assert description["grouped"] is True
    assert description["dropped_for_gap"] == 8 * 180
    assert description["rows"]["train"] + description["rows"]["holdout"] + description[
        "dropped_for_gap"
    ] + description["dropped_for_groups"] == len(when)
    # each training customer is validated in exactly one fold group
    validated = [set(customers[split.train_rows][v]) for _, v in split.folds]
    assert all(not a & b for i, a in enumerate(validated) for b in validated[i + 1 :])


@pytest.mark.parametrize("grouped", [False, True])
def test_time_series_random_tables(grouped: bool) -> None:
    """Random sizes, spacings, horizons, fold counts and sparse presence: every split made
    keeps the leakage rules; the ones refused are refused with a cutoff/row code."""
    made = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n_customers, n_cutoffs = int(rng.integers(5, 60)), int(rng.integers(4, 40))
        step = int(rng.choice([1, 7, 30]))
        days = np.sort(rng.choice(n_cutoffs * step * 2, size=n_cutoffs, replace=False))
        moments = np.datetime64("2020-01-01", "ns") + days.astype("timedelta64[D]")
        customers = np.repeat(np.arange(n_customers), n_cutoffs)
        when = np.tile(moments, n_customers)
        keep = rng.random(len(when)) < 0.7
        customers, when = customers[keep], when[keep]
        horizon = np.timedelta64(int(rng.integers(1, 6)) * step, "D")
        groups = customers.astype(str) if grouped else None
        try:
            split = make_split(
                n_rows=len(when),
                strategy="time_series",
                folds=int(rng.integers(2, 6)),
                holdout=float(rng.uniform(0.05, 0.4)),
                seed=seed,
                groups=groups,
                cutoffs=when,
                horizon=horizon,
            )
        except SplitError as error:
            assert error.code in ("too_few_cutoffs", "too_few_rows"), error
            continue
        made += 1
        check(split, len(when), groups=groups, cutoffs=when, horizon=horizon)
        if not grouped:  # every row is in the holdout, the pool or the gap
            assert split.description["dropped_for_gap"] + len(split.train_rows) + len(
                split.holdout_rows
            ) == len(when)
    assert made >= 15


def test_too_few_cutoffs_refused_up_front_with_folds_plus_gap() -> None:
    """12 monthly cutoffs, gap 8: 5 folds need 5 + 8 = 13 before anything else is tried."""
    _, when = grid(n_customers=10, n_cutoffs=12)
    error = refusal(
        n_rows=len(when), strategy="time_series", folds=5, cutoffs=when, horizon=HORIZON
    )
    assert error.code == "too_few_cutoffs"
    message = str(error)
    assert "5 folds" in message and "273-day horizon" in message
    assert "folds + gap + 1 = 14" in message and "gap = 8" in message
    assert "this dataset has 12 (2020-01-01 … 2020-12-01)" in message
    assert "more cutoffs" in message and "fewer folds" in message


def test_too_few_cutoffs_in_the_training_pool() -> None:
    """Holdout 0.2 → 5 holdout cutoffs, pool 2020-01 … 2020-11 (11): only 2 candidates."""
    with pytest.raises(SplitError) as caught:
        series(holdout=0.2)
    error = caught.value
    assert error.code == "too_few_cutoffs"
    assert "folds + gap + 1 = 12" in str(error)
    assert "has 11 (2020-01-01 … 2020-11-01)" in str(error)
    assert "2021-08-01" in str(error)  # the first holdout cutoff
    assert series(holdout=0.2, folds=2).description["rows"]["train"] == 11 * 200


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"cutoffs": None}, "cutoffs"),
        ({"horizon": None}, "horizon"),
        ({"horizon": np.timedelta64(9, "M")}, "days or finer"),
        ({"horizon": np.timedelta64(0, "D")}, "positive"),
        ({"cutoffs": np.arange(4800)}, "datetime64"),
        ({"cutoffs": np.full(4800, np.datetime64("NaT"), dtype="datetime64[ns]")}, "missing"),
        ({"cutoffs": np.tile(np.datetime64("2020-01-01", "ns"), 3)}, "one value per row"),
    ],
)
def test_time_series_invalid_params(change: dict[str, Any], words: str) -> None:
    with pytest.raises(SplitError) as caught:
        series(**change)
    assert caught.value.code == "invalid_params"
    assert words in str(caught.value)


def test_time_series_too_few_customers() -> None:
    customers, when = grid(n_customers=3)
    error = refusal(
        n_rows=len(when),
        strategy="time_series",
        holdout=0.1,
        groups=customers,
        cutoffs=when,
        horizon=HORIZON,
    )
    assert error.code == "too_few_rows"
    assert "leaves 2 of 3 customers" in str(error) and "3 folds need at least 3" in str(error)


# ------------------------------------------------------------------ stratified_cv


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
@pytest.mark.parametrize("folds", [2, 3, 5])
def test_stratified_reproduces_the_existing_split_exactly(seed: int, folds: int) -> None:
    y = np.random.default_rng(seed).choice([0, 1, 2], size=311, p=[0.6, 0.3, 0.1])
    split = make_split(
        n_rows=311, strategy="stratified_cv", folds=folds, holdout=0.2, seed=seed, stratify=y
    )
    check(split, 311)
    train, held = train_test_split(np.arange(311), test_size=0.2, stratify=y, random_state=seed)
    assert np.array_equal(split.train_rows, train)  # train_test_split's order, not sorted
    assert np.array_equal(split.holdout_rows, np.sort(held))
    expected = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(
        np.zeros(len(train)), y[train]
    )
    for (fit, validate), (want_fit, want_validate) in zip(split.folds, expected, strict=True):
        assert np.array_equal(fit, want_fit) and np.array_equal(validate, want_validate)


def test_stratified_grouped_holdout_is_the_first_group_fold() -> None:
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 80, 600)
    y = (rng.random(600) < 0.3).astype(np.int64)
    split = make_split(
        n_rows=600,
        strategy="stratified_cv",
        folds=4,
        holdout=0.25,
        seed=3,
        stratify=y,
        groups=groups,
    )
    check(split, 600, groups=groups)
    outer = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=3)
    train, held = next(outer.split(np.zeros(600), y, groups))
    assert np.array_equal(split.train_rows, train) and np.array_equal(split.holdout_rows, held)
    for _, validate in split.folds:
        assert set(y[split.train_rows][validate]) == {0, 1}


@pytest.mark.parametrize("strategy", ["stratified_cv", "kfold"])
@pytest.mark.parametrize("grouped", [False, True])
def test_random_tables(strategy: str, grouped: bool) -> None:
    made = 0
    for seed in range(80):
        rng = np.random.default_rng(seed)
        n_rows = int(rng.integers(5, 400))
        folds, holdout = int(rng.integers(2, 8)), float(rng.uniform(0.05, 0.5))
        y = rng.integers(0, int(rng.integers(1, 4)), n_rows)
        groups = rng.integers(0, int(rng.integers(2, 100)), n_rows) if grouped else None
        try:
            split = make_split(
                n_rows=n_rows,
                strategy=strategy,  # type: ignore[arg-type]
                folds=folds,
                holdout=holdout,
                seed=seed,
                stratify=y,
                groups=groups,
            )
        except SplitError as error:
            assert error.code == "too_few_rows", error
            continue
        made += 1
        check(split, n_rows, groups=groups)
        assert len(split.folds) == folds
        if not grouped:  # every row is on one side
            assert len(split.train_rows) + len(split.holdout_rows) == n_rows
        else:
            assert set(split.train_rows) | set(split.holdout_rows) == set(range(n_rows))
        for _, validate in split.folds:
            validated = split.train_rows[validate]
            if grouped:  # a validated customer brings all its training rows
                in_fold = np.isin(groups[split.train_rows], groups[validated])  # type: ignore[index]
                assert in_fold.sum() == len(validate)
        if strategy == "stratified_cv":
            for _, validate in split.folds:
                assert set(y[split.train_rows][validate]) == set(y[split.train_rows])
    assert made >= 20


def test_kfold_holdout_is_train_test_split_and_folds_are_kfold() -> None:
    split = make_split(n_rows=97, strategy="kfold", folds=4, holdout=0.3, seed=5)
    train, held = train_test_split(np.arange(97), test_size=0.3, shuffle=True, random_state=5)
    assert np.array_equal(split.train_rows, np.sort(train))
    assert np.array_equal(split.holdout_rows, np.sort(held))
    expected = KFold(n_splits=4, shuffle=True, random_state=5).split(np.zeros(len(train)))
    for (fit, validate), (want_fit, want_validate) in zip(split.folds, expected, strict=True):
        assert np.array_equal(fit, want_fit) and np.array_equal(validate, want_validate)


def test_string_customer_ids_split_like_their_sorted_codes() -> None:
    """Customer ids of any dtype: strings give the same split as integers in the same order."""
    rng = np.random.default_rng(0)
    numbers = rng.integers(0, 50, 400)
    as_text = np.array([f"c{n:03d}" for n in numbers], dtype=object)
    first = make_split(n_rows=400, strategy="kfold", folds=3, holdout=0.2, seed=1, groups=numbers)
    second = make_split(n_rows=400, strategy="kfold", folds=3, holdout=0.2, seed=1, groups=as_text)
    assert np.array_equal(first.holdout_rows, second.holdout_rows)
    check(second, 400, groups=as_text)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"folds": 1}, "folds must be an integer of at least 2, got 1"),
        ({"holdout": 0.0}, "holdout must be in (0, 1), got 0.0"),
        ({"holdout": 1.0}, "holdout must be in (0, 1), got 1.0"),
        ({"holdout": float("nan")}, "holdout must be in (0, 1)"),
        ({"strategy": "random"}, "unknown split strategy 'random'"),
        ({"strategy": "stratified_cv"}, "stratified_cv needs the class of every row"),
        ({"strategy": "stratified_cv", "stratify": np.full(50, 0.5)}, "integer class codes"),
        ({"strategy": "stratified_cv", "stratify": np.zeros(3, int)}, "one value per row (50)"),
        ({"groups": np.array([None] * 2 + ["a"] * 48, dtype=object)}, "missing in 2 of 50"),
    ],
)
def test_invalid_params(change: dict[str, Any], words: str) -> None:
    error = refusal(n_rows=50, **change)
    assert error.code == "invalid_params"
    assert words in str(error)


def test_stratified_class_too_small_for_the_folds() -> None:
    """Class 1 has 4 rows, 3 in training after the holdout: 5 folds need 5."""
    y = np.array([0] * 40 + [1] * 4)
    error = refusal(n_rows=44, strategy="stratified_cv", folds=5, stratify=y)
    assert error.code == "too_few_rows"
    assert "class 1 has 4 rows, 3 in training" in str(error)
    assert "5 stratified folds need at least 5 training rows" in str(error)


def test_stratified_single_row_class() -> None:
    error = refusal(n_rows=31, strategy="stratified_cv", stratify=np.array([0] * 30 + [2]))
    assert error.code == "too_few_rows" and "class(es) 2 have a single row" in str(error)


def test_stratified_grouped_class_in_too_few_customers() -> None:
    groups = np.arange(60) // 2  # 30 customers of 2 rows
    y = np.zeros(60, dtype=np.int64)
    y[:4] = 1  # class 1: customers 0 and 1 only
    error = refusal(n_rows=60, strategy="stratified_cv", stratify=y, groups=groups)
    assert error.code == "too_few_rows"
    assert "class 1 occurs for 2 customers" in str(error)
    assert "3 stratified folds grouped by customer need every class in at least 3" in str(error)


def test_kfold_too_few_rows() -> None:
    """10 rows, holdout 0.5 → 5 holdout, 5 training rows < 6 folds."""
    error = refusal(n_rows=10, folds=6, holdout=0.5)
    assert error.code == "too_few_rows"
    assert "leaves 5 of 10 rows for training; 6 folds need at least 6" in str(error)


def test_kfold_grouped_too_few_customers() -> None:
    error = refusal(n_rows=40, folds=4, groups=np.arange(40) % 4)
    assert error.code == "too_few_rows"
    assert "leaves 3 of 4 customers for training; 4 folds need at least 4" in str(error)
    assert "at least 5 customers in all" in str(error)


# ------------------------------------------------------------------ real data


def test_cdnow_monthly_cutoffs_grouped_by_customer() -> None:
    """CDNOW: one row per customer and month start 1997-04-01 … 1998-03-01 once the customer
    has bought something; a 90-day horizon spans 2 month starts."""
    events = pd.read_parquet(CDNOW, columns=["customer_id", "date"])
    first = events.groupby("customer_id")["date"].min().rename("first").reset_index()
    months = pd.DataFrame({"cutoff": pd.date_range("1997-04-01", "1998-03-01", freq="MS")})
    table = first.merge(months, how="cross")
    table = table[table["first"] < table["cutoff"]].reset_index(drop=True)
    groups = table["customer_id"].to_numpy()
    when = table["cutoff"].to_numpy(dtype="datetime64[ns]")
    horizon = np.timedelta64(90, "D")
    split = make_split(
        n_rows=len(table),
        strategy="time_series",
        folds=3,
        holdout=0.2,
        seed=0,
        groups=groups,
        cutoffs=when,
        horizon=horizon,
    )
    check(split, len(table), groups=groups, cutoffs=when, horizon=horizon)
    description = split.description
    assert description["gap_cutoffs"] == 2
    assert description["holdout_cutoffs"] == ["1998-02-01", "1998-03-01"]
    assert when[split.train_rows].max() == np.datetime64("1997-11-01")
    assert len(split.folds) == 3
    json.dumps(description, allow_nan=False)

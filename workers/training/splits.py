"""Which rows a training job holds out, and how it folds the rest for the hyperparameter search.

The holdout is never seen by the search, so its score is an honest estimate; the folds are
what every trial is scored on, so the same seed must give every trial the same folds.
Three strategies:

- ``stratified_cv``: class shares kept in the holdout and in every fold (classification);
- ``kfold``: plain shuffled folds (the default for regression and segmentation);
- ``time_series``: rows are (customer, cutoff) snapshots whose labels look ``horizon`` past
  the cutoff, so a row may only be fitted on when its label was known before the rows it is
  judged against: fit cutoff + horizon <= validation cutoff, for every fold and the holdout.

With ``groups`` (a customer id per row) no customer is ever on both sides of a fold or of the
holdout, so a model cannot score well by recognising a customer it was fitted on.
Every refusal is a SplitError with a stable ``code`` and a message that names the numbers and
says what a person can change. Pure: numpy, pandas and scikit-learn, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

SplitErrorCode = Literal["too_few_cutoffs", "too_few_rows", "invalid_params"]
Strategy = Literal["stratified_cv", "kfold", "time_series"]
Fold = tuple[np.ndarray, np.ndarray]

STRATEGIES: tuple[Strategy, ...] = ("stratified_cv", "kfold", "time_series")


class SplitError(ValueError):
    """A split the table cannot support; ``code`` is a stable error code."""

    def __init__(self, code: SplitErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Split:
    """Holdout and cross-validation folds as int64 row positions.

    ``train_rows`` and ``holdout_rows`` are positions in the full table, sorted, except that
    ``train_rows`` keeps train_test_split's shuffled order for ``stratified_cv`` without
    groups: models trained before this module existed were cross-validated on y[train_rows]
    in that order, and StratifiedKFold's fold assignment depends on it.
    ``folds`` are (fit, validate) positions into ``train_rows``, each sorted.
    ``description`` is plain JSON, stored with the model version.
    """

    train_rows: np.ndarray
    holdout_rows: np.ndarray
    folds: list[Fold]
    description: dict[str, Any]


def make_split(
    *,
    n_rows: int,
    strategy: Strategy,
    folds: int,
    holdout: float,
    seed: int,
    stratify: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    cutoffs: np.ndarray | None = None,
    horizon: np.timedelta64 | None = None,
) -> Split:
    """Split ``n_rows`` rows into training rows with ``folds`` folds and a ``holdout`` share.

    ``stratify`` (int class codes) is required by and used only for ``stratified_cv``;
    ``cutoffs`` and ``horizon`` are required by and used only for ``time_series``.
    """
    _check_params(n_rows, strategy, folds, holdout)
    codes = None if groups is None else _group_codes(_per_row(groups, n_rows, "groups"))
    if strategy == "time_series":
        return _time_series(n_rows, folds, holdout, seed, codes, cutoffs, horizon)
    if strategy == "stratified_cv":
        if stratify is None:
            raise SplitError(
                "invalid_params",
                "stratified_cv needs the class of every row (stratify); use kfold for "
                "regression targets",
            )
        classes = _per_row(stratify, n_rows, "stratify")
        if classes.dtype.kind not in "iub":
            raise SplitError(
                "invalid_params",
                f"stratify must hold integer class codes, got dtype {classes.dtype}",
            )
        if codes is None:
            train, held, fold_list = _stratified(classes, folds, holdout, seed)
        else:
            train, held, fold_list = _stratified_grouped(classes, codes, folds, holdout, seed)
    elif codes is None:
        train, held, fold_list = _kfold(n_rows, folds, holdout, seed)
    else:
        train, held, fold_list = _kfold_grouped(codes, folds, holdout, seed)
    _check_folds_filled(fold_list, strategy, codes is not None)
    description = _describe(strategy, folds, holdout, codes is not None, train, held)
    return Split(train, held, fold_list, description)


# ------------------------------------------------------------------ checks


def _check_params(n_rows: int, strategy: str, folds: int, holdout: float) -> None:
    if strategy not in STRATEGIES:
        raise SplitError(
            "invalid_params", f"unknown split strategy {strategy!r}; use one of {STRATEGIES}"
        )
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 2:
        raise SplitError("invalid_params", f"folds must be an integer of at least 2, got {folds}")
    if not 0.0 < holdout < 1.0:
        raise SplitError("invalid_params", f"holdout must be in (0, 1), got {holdout}")
    if n_rows < 0:
        raise SplitError("invalid_params", f"n_rows must not be negative, got {n_rows}")


def _per_row(values: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n_rows:
        raise SplitError(
            "invalid_params",
            f"{name} must hold one value per row ({n_rows}), got shape {array.shape}",
        )
    return array


def _group_codes(groups: np.ndarray) -> np.ndarray:
    """Customer ids as 0..n-1 in sorted id order, so that sklearn's group splitters (which
    np.unique the ids) split exactly as they would on the ids themselves."""
    try:
        codes, _ = pd.factorize(groups, sort=True)
    except TypeError:  # ids of mixed, unorderable types
        codes, _ = pd.factorize(groups, sort=False)
    missing = int((codes < 0).sum())
    if missing:
        raise SplitError(
            "invalid_params",
            f"groups (the customer id) is missing in {missing} of {len(codes)} rows; "
            "fill or drop those rows, or turn grouping off",
        )
    return codes.astype(np.int64)


def _too_few_rows(detail: str, remedy: str) -> SplitError:
    return SplitError("too_few_rows", f"{detail}: {remedy}")


def _check_folds_filled(fold_list: list[Fold], strategy: str, grouped: bool) -> None:
    """The splitters' own rules should make this impossible; a clear error if not."""
    for k, (fit, validate) in enumerate(fold_list):
        if len(fit) == 0 or len(validate) == 0:
            unit = "customers" if grouped else "rows"
            raise _too_few_rows(
                f"{strategy} fold {k + 1} of {len(fold_list)} fits on {len(fit)} and "
                f"validates on {len(validate)} rows",
                f"add {unit} or use fewer folds",
            )


# ------------------------------------------------------------------ stratified_cv


def _stratified(
    classes: np.ndarray, folds: int, holdout: float, seed: int
) -> tuple[np.ndarray, np.ndarray, list[Fold]]:
    """The split models were trained on before this module: keep it bit for bit."""
    n_rows = len(classes)
    labels, counts = np.unique(classes, return_counts=True)
    n_test = math.ceil(holdout * n_rows)
    if len(labels) == 0 or n_test < len(labels) or n_rows - n_test < len(labels):
        raise _too_few_rows(
            f"stratified_cv with holdout {holdout} puts {n_test} of {n_rows} rows in the "
            f"holdout and {n_rows - n_test} in training; each side needs one row of each of "
            f"the {len(labels)} classes",
            "add rows, or change the holdout share",
        )
    single = labels[counts < 2]
    if len(single):
        raise _too_few_rows(
            f"class(es) {_names(single)} have a single row; a stratified holdout needs at "
            "least 2 rows of every class",
            "add rows of those classes or merge them into another class",
        )
    train, held = train_test_split(
        np.arange(n_rows), test_size=holdout, stratify=classes, random_state=seed
    )
    train = np.asarray(train, dtype=np.int64)  # train_test_split's order, kept: see Split
    train_counts = _counts(classes[train], labels)
    _check_class_rows(labels, counts, train_counts, folds, holdout)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_list = _folds(splitter.split(np.zeros(len(train)), classes[train]))
    return train, np.sort(np.asarray(held, dtype=np.int64)), fold_list


def _check_class_rows(
    labels: np.ndarray, counts: np.ndarray, train_counts: np.ndarray, folds: int, holdout: float
) -> None:
    short = train_counts < folds
    if short.any():
        detail = ", ".join(
            f"class {int(label)} has {int(total)} rows, {int(trained)} in training"
            for label, total, trained in zip(
                labels[short], counts[short], train_counts[short], strict=True
            )
        )
        about = math.ceil(folds / (1.0 - holdout) - 1e-9)
        raise _too_few_rows(
            f"{detail}; {folds} stratified folds need at least {folds} training rows of every "
            f"class (with holdout {holdout}, about {about} rows per class)",
            "add rows of those classes, merge them into another class, or use fewer folds",
        )


def _stratified_grouped(
    classes: np.ndarray, codes: np.ndarray, folds: int, holdout: float, seed: int
) -> tuple[np.ndarray, np.ndarray, list[Fold]]:
    """The holdout is one fold of ceil(1/holdout), so its share 1/n is at most ``holdout``
    (round() would make 0.4 a half: Python rounds 2.5 to 2)."""
    n_outer = max(2, math.ceil(1.0 / holdout - 1e-9))
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if n_groups < n_outer:
        raise _too_few_rows(
            f"stratified_cv grouped by customer with holdout {holdout} holds out 1 of "
            f"{n_outer} customer folds and needs at least {n_outer} customers; there are "
            f"{n_groups}",
            "add customers, use a larger holdout share, or turn grouping off",
        )
    labels, counts = np.unique(classes, return_counts=True)
    _check_class_customers(labels, _customers_per_class(classes, codes, labels), folds, "")
    if counts.max() < n_outer:
        raise _too_few_rows(
            f"stratified_cv grouped by customer with holdout {holdout} splits the customers "
            f"into {n_outer} stratified folds, but no class has {n_outer} rows (the largest "
            f"has {int(counts.max())})",
            "add rows, use a larger holdout share, or turn grouping off",
        )
    outer = StratifiedGroupKFold(n_splits=n_outer, shuffle=True, random_state=seed)
    train, held = next(outer.split(np.zeros(len(codes)), classes, codes))
    train = np.sort(np.asarray(train, dtype=np.int64))
    customers = _customers_per_class(classes[train], codes[train], labels)
    _check_class_customers(labels, customers, folds, "training ")
    inner = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_list = _folds(inner.split(np.zeros(len(train)), classes[train], codes[train]))
    for k, (_, validate) in enumerate(fold_list):
        missing = np.setdiff1d(labels, classes[train][validate])
        if len(missing):
            raise _too_few_rows(
                f"stratified_cv fold {k + 1} of {folds} grouped by customer validates no row "
                f"of class(es) {_names(missing)}",
                "add customers of those classes, use fewer folds, or turn grouping off",
            )
    return train, np.sort(np.asarray(held, dtype=np.int64)), fold_list


def _check_class_customers(
    labels: np.ndarray, customers: np.ndarray, folds: int, which: str
) -> None:
    short = customers < folds
    if short.any():
        detail = ", ".join(
            f"class {int(label)} occurs for {int(n)} {which}customers"
            for label, n in zip(labels[short], customers[short], strict=True)
        )
        raise _too_few_rows(
            f"{detail}; {folds} stratified folds grouped by customer need every class in at "
            f"least {folds} {which}customers",
            "add customers of those classes, merge classes, use fewer folds, or turn grouping off",
        )


def _customers_per_class(classes: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    index = np.searchsorted(labels, classes)
    n_groups = int(codes.max()) + 1 if len(codes) else 1
    pairs = np.unique(index.astype(np.int64) * n_groups + codes)
    return np.bincount(pairs // n_groups, minlength=len(labels))


# ------------------------------------------------------------------ kfold


def _kfold(
    n_rows: int, folds: int, holdout: float, seed: int
) -> tuple[np.ndarray, np.ndarray, list[Fold]]:
    n_test = math.ceil(holdout * n_rows)
    if n_rows - n_test < folds:
        raise _too_few_rows(
            f"kfold with holdout {holdout} leaves {max(n_rows - n_test, 0)} of {n_rows} rows "
            f"for training; {folds} folds need at least {folds}",
            "add rows, use fewer folds, or a smaller holdout share",
        )
    train, held = train_test_split(
        np.arange(n_rows), test_size=holdout, shuffle=True, random_state=seed
    )
    train = np.sort(np.asarray(train, dtype=np.int64))
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_list = _folds(splitter.split(np.zeros(len(train))))
    return train, np.sort(np.asarray(held, dtype=np.int64)), fold_list


def _kfold_grouped(
    codes: np.ndarray, folds: int, holdout: float, seed: int
) -> tuple[np.ndarray, np.ndarray, list[Fold]]:
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    _check_training_customers("kfold", n_groups, folds, holdout)
    outer = GroupShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
    train, held = next(outer.split(np.zeros(len(codes)), groups=codes))
    train = np.sort(np.asarray(train, dtype=np.int64))
    inner = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_list = _folds(inner.split(np.zeros(len(train)), groups=codes[train]))
    return train, np.sort(np.asarray(held, dtype=np.int64)), fold_list


def _check_training_customers(strategy: str, n_groups: int, folds: int, holdout: float) -> None:
    """GroupShuffleSplit holds out ceil(holdout · customers); the rest must fill the folds."""
    trained = n_groups - math.ceil(holdout * n_groups)
    if trained < folds:
        needed = folds + 1
        while needed - math.ceil(holdout * needed) < folds:
            needed += 1
        raise _too_few_rows(
            f"{strategy} grouped by customer with holdout {holdout} leaves {max(trained, 0)} "
            f"of {n_groups} customers for training; {folds} folds need at least {folds} "
            f"(at least {needed} customers in all)",
            "add customers, use fewer folds, a smaller holdout share, or turn grouping off",
        )


# ------------------------------------------------------------------ time_series


def _time_series(
    n_rows: int,
    folds: int,
    holdout: float,
    seed: int,
    codes: np.ndarray | None,
    cutoffs: np.ndarray | None,
    horizon: np.timedelta64 | None,
) -> Split:
    if cutoffs is None or horizon is None:
        raise SplitError(
            "invalid_params",
            "time_series needs the cutoff of every row (cutoffs) and the label horizon "
            "(horizon); build the table with temporal features, or use stratified_cv/kfold",
        )
    when = _cutoff_array(cutoffs, n_rows)
    span = _horizon_ns(horizon)
    distinct = np.unique(when)
    gap = _gap(distinct, span)
    if len(distinct) < folds + gap:
        raise _cutoff_shortage(folds, span, gap, distinct, "this dataset")

    n_held = max(1, round(holdout * len(distinct)))
    first_held = distinct[max(len(distinct) - n_held, 0)]
    at_holdout = when >= first_held
    before_gap = when + span <= first_held
    in_gap = ~at_holdout & ~before_gap
    if codes is None:  # every row may be on either side
        held_side = train_side = np.ones(n_rows, dtype=bool)
    else:  # a customer's rows are all on one side
        held_side = _holdout_customers(codes, folds, holdout, seed)[codes]
        train_side = ~held_side
    held = np.flatnonzero(at_holdout & held_side).astype(np.int64)
    train = np.flatnonzero(before_gap & train_side).astype(np.int64)
    dropped_for_gap = int((in_gap & train_side).sum())
    held_cutoffs = distinct[distinct >= first_held]
    if len(train) == 0:
        where = (
            f"the training pool before the holdout (the last {len(held_cutoffs)} cutoffs "
            f"{_iso(held_cutoffs[0])} … {_iso(held_cutoffs[-1])} are the holdout and the gap "
            "before them is dropped)"
        )
        raise _cutoff_shortage(folds, span, gap, distinct[:0], where)
    if len(held) == 0:
        raise SplitError(
            "too_few_cutoffs",
            f"the time_series holdout is empty: the holdout customers have no rows at the "
            f"last {len(held_cutoffs)} cutoffs ({_iso(held_cutoffs[0])} … "
            f"{_iso(held_cutoffs[-1])}); use a larger holdout share, add customers, or build "
            "features at more cutoffs",
        )

    fold_list, windows = _time_folds(
        when[train], span, gap, folds, seed, held_cutoffs, None if codes is None else codes[train]
    )
    description = _describe("time_series", folds, holdout, codes is not None, train, held)
    days = span / np.timedelta64(1, "D")
    description.update(
        {
            "horizon_days": int(days) if float(days).is_integer() else float(days),
            "gap_cutoffs": gap,
            "holdout_cutoffs": [_iso(held_cutoffs[0]), _iso(held_cutoffs[-1])],
            "dropped_for_gap": dropped_for_gap,
            "dropped_for_groups": n_rows - len(train) - len(held) - dropped_for_gap,
            "fold_windows": windows,
        }
    )
    return Split(train, held, fold_list, description)


def _time_folds(
    when: np.ndarray,
    span: np.timedelta64,
    gap: int,
    folds: int,
    seed: int,
    held_cutoffs: np.ndarray,
    codes: np.ndarray | None,
) -> tuple[list[Fold], list[dict[str, Any]]]:
    """Expanding-window folds over the training pool: fold k validates a block of cutoffs and
    fits on every row whose label was known by the block's first cutoff."""
    pool = np.unique(when)
    candidates = pool[pool >= pool[0] + span]
    if len(candidates) < folds:
        where = (
            f"the training pool (before the holdout cutoffs {_iso(held_cutoffs[0])} … "
            f"{_iso(held_cutoffs[-1])} and the horizon-long gap before them)"
        )
        raise _cutoff_shortage(folds, span, gap, pool, where)
    customer_fold = None
    if codes is not None:
        customer_fold = _customer_folds(codes, folds, seed)[codes]
    fold_list: list[Fold] = []
    windows: list[dict[str, Any]] = []
    for k, block in enumerate(np.array_split(candidates, folds)):
        validate = (when >= block[0]) & (when <= block[-1])
        fit = when + span <= block[0]
        if customer_fold is not None:
            validate &= customer_fold == k
            fit &= customer_fold != k
        if not validate.any() or not fit.any():
            whose = f" of the customers in fold group {k + 1}" if codes is not None else ""
            raise SplitError(
                "too_few_cutoffs",
                f"time_series fold {k + 1} of {folds} would fit on {int(fit.sum())} rows and "
                f"validate on {int(validate.sum())} rows{whose} at cutoffs {_iso(block[0])} … "
                f"{_iso(block[-1])}: build features at more cutoffs, add customers, or use "
                "fewer folds",
            )
        fold_list.append(
            (np.flatnonzero(fit).astype(np.int64), np.flatnonzero(validate).astype(np.int64))
        )
        windows.append(
            {
                "fit_rows": int(fit.sum()),
                "validate_rows": int(validate.sum()),
                "fit_cutoff_max": _iso(when[fit].max()),
                "validate_cutoff_min": _iso(when[validate].min()),
            }
        )
    return fold_list, windows


def _holdout_customers(codes: np.ndarray, folds: int, holdout: float, seed: int) -> np.ndarray:
    """Per customer code: True when the customer is held out (GroupShuffleSplit's choice)."""
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    _check_training_customers("time_series", n_groups, folds, holdout)
    outer = GroupShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
    _, held = next(outer.split(np.zeros(len(codes)), groups=codes))
    chosen = np.zeros(n_groups, dtype=bool)
    chosen[codes[held]] = True
    return chosen


def _customer_folds(codes: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Per customer code: its fold group, dealt round robin after a seeded shuffle (-1 for
    customers without rows in the pool)."""
    present = np.unique(codes)
    if len(present) < folds:
        raise _too_few_rows(
            f"time_series grouped by customer has {len(present)} customers in the training "
            f"pool; {folds} folds need at least {folds}",
            "add customers, use fewer folds, or turn grouping off",
        )
    order = np.random.default_rng(seed).permutation(present)
    assigned = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    assigned[order] = np.arange(len(order)) % folds
    return assigned


def _cutoff_array(cutoffs: np.ndarray, n_rows: int) -> np.ndarray:
    array = _per_row(cutoffs, n_rows, "cutoffs")
    if array.dtype.kind != "M":
        raise SplitError(
            "invalid_params",
            f"cutoffs must be timezone-naive datetime64 values, got dtype {array.dtype}",
        )
    array = array.astype("datetime64[ns]")
    missing = int(np.isnat(array).sum())
    if missing:
        raise SplitError(
            "invalid_params",
            f"cutoffs is missing in {missing} of {n_rows} rows; every row needs its cutoff",
        )
    return array


def _horizon_ns(horizon: np.timedelta64 | timedelta) -> np.timedelta64:
    """The horizon in nanoseconds; months and years are refused (numpy would silently use
    their average length, which moves the gap by a day or two)."""
    if isinstance(horizon, timedelta):
        horizon = pd.Timedelta(horizon).to_timedelta64()
    if not isinstance(horizon, np.timedelta64) or np.datetime_data(horizon.dtype)[0] in "YM":
        raise SplitError(
            "invalid_params",
            f"horizon must be a numpy timedelta64 in days or finer units, got {horizon!r}",
        )
    span = horizon.astype("timedelta64[ns]")
    if np.isnat(span) or span <= np.timedelta64(0, "ns"):
        raise SplitError("invalid_params", f"horizon must be positive, got {horizon!r}")
    return span


def _gap(distinct: np.ndarray, span: np.timedelta64) -> int:
    """How many distinct cutoffs one horizon spans: max over u of #cutoffs in (u - span, u)."""
    if len(distinct) == 0:
        return 0
    first_inside = np.searchsorted(distinct, distinct - span, side="right")
    return int((np.arange(len(distinct)) - first_inside).max())


def _cutoff_shortage(
    folds: int, span: np.timedelta64, gap: int, have: np.ndarray, where: str
) -> SplitError:
    days = span / np.timedelta64(1, "D")
    dates = f" ({_iso(have[0])} … {_iso(have[-1])})" if len(have) else ""
    return SplitError(
        "too_few_cutoffs",
        f"time_series with {folds} folds and a {days:g}-day horizon needs at least "
        f"folds + gap + 1 = {folds + gap + 1} distinct cutoffs before the holdout "
        f"(gap = {gap} cutoffs fall inside one horizon); {where} has {len(have)}{dates}: "
        "build features at more cutoffs, use fewer folds, or a shorter horizon",
    )


# ------------------------------------------------------------------ helpers


def _folds(pairs: Any) -> list[Fold]:
    return [
        (np.sort(np.asarray(fit, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64)))
        for fit, val in pairs
    ]


def _counts(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(labels, values), minlength=len(labels))


def _names(labels: np.ndarray) -> str:
    return ", ".join(str(int(label)) for label in labels)


def _iso(moment: Any) -> str:
    stamp = pd.Timestamp(moment)
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()


def _describe(
    strategy: str,
    folds: int,
    holdout: float,
    grouped: bool,
    train: np.ndarray,
    held: np.ndarray,
) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "folds": int(folds),
        "holdout_share": float(holdout),
        "grouped": grouped,
        "rows": {"train": len(train), "holdout": len(held)},
    }

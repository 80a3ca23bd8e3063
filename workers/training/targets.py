"""The target column as the model learns it, per problem, or a refusal with a reason.

Binary: 0/1 with 1 = the positive class. Multiclass: codes 0..C-1 over the class names in
sorted order; classes too small to reach every CV fold and the holdout are merged into
``other`` (or refused, as the request says). Regression: finite floats.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from workers.preprocessing.cleaning.base import describe_columns
from workers.training.errors import TrainingInputError

OTHER_CLASS = "other"


@dataclass(frozen=True)
class Target:
    """The encoded target: ``y`` per row, ``classes`` by code (classification only)."""

    y: np.ndarray
    classes: list[str] = field(default_factory=list)
    positive_class: str | None = None
    merged: dict[str, int] = field(default_factory=dict)  # merged class -> rows


def rows_needed(holdout: float, folds: int) -> int:
    """Rows per class so that about folds + 1 land in training and at least 1 in the holdout."""
    return max(math.ceil((folds + 1) / (1.0 - holdout) - 1e-9), math.ceil(1.0 / holdout - 1e-9))


def _no_missing(values: pd.Series, target: str) -> None:
    missing = int(values.isna().sum())
    if missing:
        raise TrainingInputError(
            "target_missing_values",
            f"target column {target!r} is missing in {missing} of {len(values)} rows; "
            "drop or fill those rows before training",
        )


def _present_counts(values: pd.Series) -> pd.Series:
    counts = values.value_counts(dropna=True)
    return counts[counts > 0]  # unused pandas categories


def binary_target(values: pd.Series, target: str, positive_class: str | None) -> Target:
    _no_missing(values, target)
    counts = _present_counts(values)
    if len(counts) < 2:
        _single_class(counts, values, target)
    if len(counts) > 2:
        shown = describe_columns([str(v) for v in counts.index])
        raise TrainingInputError(
            "target_not_binary",
            f"target column {target!r} has {len(counts)} distinct values ({shown}); binary "
            "classification needs exactly 2 (use model_type journey_prediction for multiclass)",
        )
    first, second = counts.index[0], counts.index[1]
    if positive_class is not None:
        positive = _match_class([first, second], positive_class, values.dtype)
        if positive is None:
            raise TrainingInputError(
                "invalid_params",
                f"positive_class {positive_class!r} is not a value of target column "
                f"{target!r}; its values are {str(first)!r} and {str(second)!r}",
            )
    else:
        positive = _default_positive(counts, values.dtype)
    negative = second if positive == first else first
    y = (values == positive).to_numpy(dtype=bool).astype(np.int64)
    return Target(y=y, classes=[str(negative), str(positive)], positive_class=str(positive))


def _single_class(counts: pd.Series, values: pd.Series, target: str) -> None:
    only = str(counts.index[0]) if len(counts) else "nothing"
    raise TrainingInputError(
        "target_single_class",
        f"target column {target!r} has a single value ({only!r} in all {len(values)} "
        "rows); a classifier needs rows of at least two classes",
    )


def multiclass_target(
    values: pd.Series,
    target: str,
    *,
    holdout: float,
    folds: int,
    rare: Literal["merge", "refuse"],
) -> Target:
    """Class codes over sorted class names; rare classes merged into ``other`` or refused."""
    _no_missing(values, target)
    names = values.astype(str)
    counts = _present_counts(names)
    if len(counts) < 2:
        _single_class(counts, values, target)
    needed = rows_needed(holdout, folds)
    rare_classes = {str(c): int(n) for c, n in counts.items() if n < needed}
    if rare_classes and rare == "refuse":
        shown = ", ".join(f"{c!r} ({n})" for c, n in sorted(rare_classes.items()))
        raise TrainingInputError(
            "target_class_too_small",
            f"target column {target!r} has class(es) with fewer than {needed} rows: {shown}; "
            f"with {folds} folds and holdout {holdout} every class needs {needed} rows. Add "
            "rows, merge them yourself, or set rare_classes to 'merge' (they become 'other')",
        )
    if rare_classes:
        if OTHER_CLASS in counts.index and OTHER_CLASS not in rare_classes:
            rare_classes.pop(OTHER_CLASS, None)
        names = names.where(~names.isin(list(rare_classes)), OTHER_CLASS)
        counts = _present_counts(names)
        small = {str(c): int(n) for c, n in counts.items() if n < needed}
        if small or len(counts) < 2:
            raise TrainingInputError(
                "target_class_too_small",
                f"target column {target!r}: after merging the rare classes "
                f"{describe_columns(sorted(rare_classes))} into {OTHER_CLASS!r}, "
                f"{'the classes ' + str(small) + ' are' if small else 'only one class is'} "
                f"still below {needed} rows (needed for {folds} folds and holdout {holdout}); "
                "add rows or lower folds",
            )
    classes = sorted(str(c) for c in counts.index)
    codes = {name: code for code, name in enumerate(classes)}
    y = names.map(codes).to_numpy(dtype=np.int64)
    return Target(y=y, classes=classes, merged=rare_classes)


def regression_target(values: pd.Series, target: str) -> Target:
    kind = values.dtype
    if pd.api.types.is_bool_dtype(kind) or not pd.api.types.is_numeric_dtype(kind):
        sample = describe_columns([str(v) for v in values.dropna().unique()[:5]])
        raise TrainingInputError(
            "target_not_numeric",
            f"target column {target!r} is {kind} (values such as {sample}); regression "
            "needs a numeric target such as spend (use a classification model type for "
            "classes, or convert the column)",
        )
    _no_missing(values, target)
    y = values.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    infinite = int((~np.isfinite(y)).sum())
    if infinite:
        raise TrainingInputError(
            "target_not_numeric",
            f"target column {target!r} holds {infinite} infinite value(s); regression needs "
            "finite numbers",
        )
    if np.ptp(y) == 0:
        raise TrainingInputError(
            "target_single_class",
            f"target column {target!r} has the single value {y[0]:g} in all {len(y)} rows; "
            "there is nothing to learn",
        )
    return Target(y=y)


def _match_class(values: Sequence[Any], given: str, dtype: Any) -> Any:
    """The value whose str() is ``given``; booleans also match 'true'/'false' in any case and
    numbers match numerically ('1' for 1.0), because the request is JSON text."""
    for value in values:
        if str(value) == given:
            return value
    if pd.api.types.is_bool_dtype(dtype):
        return next((v for v in values if str(v).lower() == given.strip().lower()), None)
    if pd.api.types.is_numeric_dtype(dtype):
        try:
            number = float(given)
        except ValueError:
            return None
        return next((v for v in values if float(v) == number), None)
    return None


def _default_positive(counts: pd.Series, dtype: Any) -> Hashable:
    """True for booleans, 1 for 0/1 numbers, otherwise the rarer class (ties: larger str)."""
    values = list(counts.index)
    if pd.api.types.is_bool_dtype(dtype):
        return next(v for v in values if bool(v))
    if pd.api.types.is_numeric_dtype(dtype) and sorted(float(v) for v in values) == [0.0, 1.0]:
        return next(v for v in values if float(v) == 1.0)
    return max(values, key=lambda v: (-int(counts[v]), str(v)))

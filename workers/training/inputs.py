"""Turn a feature table into binary-classification training data, or refuse with a reason.

Every refusal is a TrainingInputError whose ``code`` is stable and whose message names the
column and the counts, so that a person can fix the request without reading the code.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from workers.preprocessing.cleaning.base import describe_columns
from workers.preprocessing.columns import column_kind
from workers.training.pipeline import model_frame

TrainingInputErrorCode = Literal[
    "column_missing",
    "target_missing_values",
    "target_single_class",
    "target_not_binary",
    "invalid_params",
    "no_features",
    "too_few_rows",
]

TIMESTAMP_REASON = "timestamp column (derive features from it instead)"


class TrainingInputError(ValueError):
    """A training request that does not fit the table; ``code`` is a stable error code."""

    def __init__(self, code: TrainingInputErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TrainingData:
    """Model inputs split into training rows (for cross-validation) and holdout rows.

    ``X_*`` hold the model inputs only, in table order, already passed through
    ``model_frame``; ``y_*`` are int 0/1 with 1 = ``positive_class``.
    ``input_schema`` records the inputs' dtypes as the table gave them, before that cast.
    """

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_holdout: pd.DataFrame
    y_holdout: np.ndarray
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str]
    positive_class: str
    classes: list[str]
    input_schema: list[dict[str, str]]


def prepare_binary(
    frame: pd.DataFrame,
    *,
    target: str,
    exclude: list[str],
    features: list[str] | None,
    holdout: float,
    folds: int,
    seed: int,
    positive_class: str | None = None,
) -> TrainingData:
    """Check the target, choose the inputs and split off a stratified holdout."""
    if not 0.0 < holdout < 1.0:
        raise TrainingInputError("invalid_params", f"holdout must be in (0, 1), got {holdout}")
    if folds < 2:
        raise TrainingInputError("invalid_params", f"folds must be at least 2, got {folds}")
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise TrainingInputError(
            "column_missing",
            f"target column {target!r} is not in the table; its columns: "
            f"{describe_columns(columns)}",
        )
    y_values = frame[target]
    negative, positive = _binary_classes(y_values, target, positive_class)
    y = (y_values == positive).to_numpy(dtype=bool).astype(np.int64)

    candidates = _candidate_inputs(columns, target, exclude, features)
    numeric, categorical, dropped = _classify_inputs(frame, candidates)
    if not numeric and not categorical:
        excluded = [c for c in columns if c != target and c not in candidates]
        raise TrainingInputError(
            "no_features",
            f"no input columns are left to train on: excluded {describe_columns(excluded)}, "
            f"dropped {dropped or '{}'}; include at least one usable numeric or text column",
        )

    names = {0: str(negative), 1: str(positive)}
    _check_class_counts(y, names, holdout, folds)
    inputs = [c for c in columns if c in numeric or c in categorical]
    X = model_frame(frame[inputs], numeric, categorical)
    train_rows, holdout_rows = train_test_split(
        np.arange(len(frame)), test_size=holdout, stratify=y, random_state=seed
    )
    y_train, y_holdout = y[train_rows], y[holdout_rows]
    _verify_split(y_train, y_holdout, names, holdout, folds)
    return TrainingData(
        X_train=X.iloc[train_rows].reset_index(drop=True),
        y_train=y_train,
        X_holdout=X.iloc[holdout_rows].reset_index(drop=True),
        y_holdout=y_holdout,
        numeric=numeric,
        categorical=categorical,
        dropped=dropped,
        positive_class=str(positive),
        classes=[str(negative), str(positive)],
        input_schema=[{"name": c, "dtype": str(frame[c].dtype)} for c in inputs],
    )


def _binary_classes(
    values: pd.Series, target: str, positive_class: str | None
) -> tuple[Hashable, Hashable]:
    """(negative, positive) as the target's own values (so equality encodes y exactly)."""
    missing = int(values.isna().sum())
    if missing:
        raise TrainingInputError(
            "target_missing_values",
            f"target column {target!r} is missing in {missing} of {len(values)} rows; "
            "drop or fill those rows before training",
        )
    counts = values.value_counts(dropna=True)
    counts = counts[counts > 0]  # unused pandas categories
    if len(counts) < 2:
        only = str(counts.index[0]) if len(counts) else "nothing"
        raise TrainingInputError(
            "target_single_class",
            f"target column {target!r} has a single value ({only!r} in all {len(values)} "
            "rows); a classifier needs rows of both classes",
        )
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
    return negative, positive


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


def _default_positive(counts: pd.Series, dtype: Any) -> Any:
    """True for booleans, 1 for 0/1 numbers, otherwise the rarer class (ties: larger str)."""
    values = list(counts.index)
    if pd.api.types.is_bool_dtype(dtype):
        return next(v for v in values if bool(v))
    if pd.api.types.is_numeric_dtype(dtype) and sorted(float(v) for v in values) == [0.0, 1.0]:
        return next(v for v in values if float(v) == 1.0)
    return max(values, key=lambda v: (-int(counts[v]), str(v)))


def _candidate_inputs(
    columns: list[str], target: str, exclude: list[str], features: list[str] | None
) -> list[str]:
    """The requested inputs in table order; ``exclude`` always wins (ids must never leak)."""
    if features is None:
        chosen = set(columns)
    else:
        unknown = [f for f in dict.fromkeys(features) if f not in columns]
        if unknown:
            raise TrainingInputError(
                "column_missing",
                f"feature column(s) {describe_columns(unknown)} are not in the table; its "
                f"columns: {describe_columns(columns)}",
            )
        if target in features:
            raise TrainingInputError(
                "invalid_params",
                f"the target column {target!r} cannot also be a feature; remove it from features",
            )
        chosen = set(features)
    skipped = {target, *exclude}
    return [c for c in columns if c in chosen and c not in skipped]


def _classify_inputs(
    frame: pd.DataFrame, candidates: list[str]
) -> tuple[list[str], list[str], dict[str, str]]:
    numeric: list[str] = []
    categorical: list[str] = []
    dropped: dict[str, str] = {}
    for name in candidates:
        series = frame[name]
        kind = column_kind(series)
        if kind == "timestamp":
            dropped[name] = TIMESTAMP_REASON
        elif series.isna().all():
            dropped[name] = "entirely missing"
        elif series.nunique(dropna=True) == 1:
            dropped[name] = "constant"
        elif kind in ("numeric", "boolean"):
            numeric.append(name)
        else:
            categorical.append(name)
    return numeric, categorical, dropped


def _rows_needed(holdout: float, folds: int) -> int:
    """Rows per class so that about folds + 1 land in training and at least 1 in the holdout."""
    return max(math.ceil((folds + 1) / (1.0 - holdout) - 1e-9), math.ceil(1.0 / holdout - 1e-9))


def _too_few(detail: str, names: dict[int, str], holdout: float, folds: int) -> TrainingInputError:
    return TrainingInputError(
        "too_few_rows",
        f"{detail}; with holdout {holdout} and {folds} folds each class needs at least "
        f"{folds + 1} training rows and 1 holdout row (about {_rows_needed(holdout, folds)} "
        f"rows per class); add rows of class {names[0]!r}/{names[1]!r}, or lower folds or "
        "the holdout share",
    )


def _check_class_counts(y: np.ndarray, names: dict[int, str], holdout: float, folds: int) -> None:
    counts = np.bincount(y, minlength=2)
    needed = _rows_needed(holdout, folds)
    short = [label for label in (0, 1) if counts[label] < needed]
    if short:
        detail = ", ".join(f"class {names[label]!r} has {counts[label]} rows" for label in short)
        raise _too_few(detail, names, holdout, folds)


def _verify_split(
    y_train: np.ndarray, y_holdout: np.ndarray, names: dict[int, str], holdout: float, folds: int
) -> None:
    """The pre-check is approximate (the split rounds); this checks the actual split."""
    train, held = np.bincount(y_train, minlength=2), np.bincount(y_holdout, minlength=2)
    for label in (0, 1):
        if train[label] < folds + 1 or held[label] < 1:
            raise _too_few(
                f"class {names[label]!r} got {train[label]} training and {held[label]} "
                "holdout rows",
                names,
                holdout,
                folds,
            )

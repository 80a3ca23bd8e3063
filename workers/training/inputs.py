"""Turn a feature table into training data for one problem, or refuse with a reason.

Choose the inputs, encode the target (``targets``), split off the holdout and the CV folds
(``splits``: stratified, k-fold, grouped by customer, or time-ordered with a gap of the
label horizon). Every refusal is a TrainingInputError with a stable ``code`` and a message
that names the column and the counts, raised before any trial runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from api_client.train_params import Problem
from workers.preprocessing.cleaning.base import describe_columns
from workers.preprocessing.columns import column_kind
from workers.training.errors import TrainingInputError, TrainingInputErrorCode
from workers.training.pipeline import model_frame
from workers.training.splits import SplitError, make_split
from workers.training.targets import (
    Target,
    binary_target,
    multiclass_target,
    regression_target,
    rows_needed,
)

__all__ = [
    "TIMESTAMP_REASON",
    "SplitPlan",
    "TrainingData",
    "TrainingInputError",
    "TrainingInputErrorCode",
    "prepare_binary",
    "prepare_training",
]

TIMESTAMP_REASON = "timestamp column (derive features from it instead)"


@dataclass(frozen=True)
class SplitPlan:
    """How to split: the request's validation section, with the horizon in days resolved."""

    strategy: Literal["stratified_cv", "kfold", "time_series"] = "stratified_cv"
    folds: int = 5
    holdout: float = 0.2
    group_by: str | None = None
    cutoff_column: str = "cutoff"
    horizon_days: int | None = None


@dataclass(frozen=True)
class TrainingData:
    """Model inputs split into training rows (for cross-validation) and holdout rows.

    ``X_*`` hold the model inputs only, already passed through ``model_frame``. ``y_*``:
    binary 0/1 with 1 = ``positive_class``; multiclass codes into ``classes``; regression
    floats; clustering zeros (no target). ``folds`` are (fit, validate) positions into the
    training rows. ``input_schema`` records the inputs' dtypes as the table gave them.
    """

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_holdout: pd.DataFrame
    y_holdout: np.ndarray
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str]
    positive_class: str | None
    classes: list[str]
    input_schema: list[dict[str, Any]]
    problem: Problem = "binary"
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    split: dict[str, Any] = field(default_factory=dict)
    merged_classes: dict[str, int] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


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
    """Binary training data with a stratified holdout and stratified folds."""
    return prepare_training(
        frame,
        problem="binary",
        target=target,
        exclude=exclude,
        features=features,
        plan=SplitPlan(strategy="stratified_cv", folds=folds, holdout=holdout),
        seed=seed,
        positive_class=positive_class,
    )


def prepare_training(
    frame: pd.DataFrame,
    *,
    problem: Problem,
    target: str | None,
    exclude: list[str],
    features: list[str] | None,
    plan: SplitPlan,
    seed: int,
    positive_class: str | None = None,
    rare_classes: Literal["merge", "refuse"] = "merge",
    max_features: int | None = None,
) -> TrainingData:
    """Check the target, choose the inputs and split off the holdout and the folds."""
    if not 0.0 < plan.holdout < 1.0:
        raise TrainingInputError("invalid_params", f"holdout must be in (0, 1), got {plan.holdout}")
    if plan.folds < 2:
        raise TrainingInputError("invalid_params", f"folds must be at least 2, got {plan.folds}")
    columns = [str(c) for c in frame.columns]
    for role, name in (("target", target), ("group_by", plan.group_by)):
        if name is not None and name not in columns:
            raise TrainingInputError(
                "column_missing",
                f"{role} column {name!r} is not in the table; its columns: "
                f"{describe_columns(columns)}",
            )
    encoded = _encode_target(frame, problem, target, plan, positive_class, rare_classes)
    skipped = [*exclude, *([plan.group_by] if plan.group_by else [])]
    candidates = _candidate_inputs(columns, target, skipped, features)
    numeric, categorical, dropped = _classify_inputs(frame, candidates)
    if not numeric and not categorical:
        excluded = [c for c in columns if c != target and c not in candidates]
        raise TrainingInputError(
            "no_features",
            f"no input columns are left to train on: excluded {describe_columns(excluded)}, "
            f"dropped {dropped or '{}'}; include at least one usable numeric or text column",
        )
    inputs = [c for c in columns if c in numeric or c in categorical]
    if max_features is not None and max_features > len(inputs):
        raise TrainingInputError(
            "max_features_too_large",
            f"selection.max_features is {max_features} but the table has {len(inputs)} usable "
            f"input features; ask for at most {len(inputs)}, or drop selection",
        )
    if problem == "binary":
        names = dict(enumerate(encoded.classes))
        _check_class_counts(encoded.y, names, plan.holdout, plan.folds)
    split = _split(frame, encoded, problem, plan, seed)
    train_rows, holdout_rows = split.train_rows, split.holdout_rows
    y_train, y_holdout = encoded.y[train_rows], encoded.y[holdout_rows]
    if problem in ("binary", "multiclass"):
        _verify_split(y_train, y_holdout, encoded.classes, plan)
        _verify_folds(y_train, split.folds, encoded.classes, plan)
    X = model_frame(frame[inputs], numeric, categorical)
    return TrainingData(
        X_train=X.iloc[train_rows].reset_index(drop=True),
        y_train=y_train,
        X_holdout=X.iloc[holdout_rows].reset_index(drop=True),
        y_holdout=y_holdout,
        numeric=numeric,
        categorical=categorical,
        dropped=dropped,
        positive_class=encoded.positive_class,
        classes=encoded.classes,
        input_schema=[_schema_field(frame[c], c in categorical) for c in inputs],
        problem=problem,
        folds=split.folds,
        split=split.description,
        merged_classes=encoded.merged,
    )


def _encode_target(
    frame: pd.DataFrame,
    problem: Problem,
    target: str | None,
    plan: SplitPlan,
    positive_class: str | None,
    rare_classes: Literal["merge", "refuse"],
) -> Target:
    if problem == "clustering" or target is None:
        return Target(y=np.zeros(len(frame)))
    values = frame[target]
    if problem == "binary":
        return binary_target(values, target, positive_class)
    if problem == "multiclass":
        return multiclass_target(
            values, target, holdout=plan.holdout, folds=plan.folds, rare=rare_classes
        )
    return regression_target(values, target)


def _split(
    frame: pd.DataFrame, encoded: Target, problem: Problem, plan: SplitPlan, seed: int
) -> Any:
    cutoffs = horizon = None
    if plan.strategy == "time_series":
        cutoffs, horizon = _time_axis(frame, plan)
    groups = frame[plan.group_by].to_numpy() if plan.group_by else None
    if groups is not None and pd.isna(groups).any():
        raise TrainingInputError(
            "invalid_params",
            f"group_by column {plan.group_by!r} is missing in {int(pd.isna(groups).sum())} "
            "rows; every row needs its customer id",
        )
    try:
        return make_split(
            n_rows=len(frame),
            strategy=plan.strategy,
            folds=plan.folds,
            holdout=plan.holdout,
            seed=seed,
            stratify=encoded.y if problem in ("binary", "multiclass") else None,
            groups=groups,
            cutoffs=cutoffs,
            horizon=horizon,
        )
    except SplitError as exc:
        raise TrainingInputError(exc.code, str(exc)) from None


def _time_axis(frame: pd.DataFrame, plan: SplitPlan) -> tuple[np.ndarray, np.timedelta64]:
    name = plan.cutoff_column
    if name not in frame.columns:
        raise TrainingInputError(
            "column_missing",
            f"validation strategy time_series orders folds by the cutoff column {name!r}, "
            f"which is not in the table (columns: {describe_columns(list(map(str, frame.columns)))}"
            "); set validation.cutoff_column, or use kfold / stratified_cv",
        )
    if plan.horizon_days is None:
        raise TrainingInputError(
            "invalid_params",
            "validation strategy time_series needs the label horizon (e.g. validation.horizon "
            "'39W'); this dataset does not record one (it was not built by build_features "
            "with a label)",
        )
    try:
        cutoffs = pd.to_datetime(frame[name]).to_numpy(dtype="datetime64[ns]")
    except (TypeError, ValueError):
        raise TrainingInputError(
            "invalid_params", f"cutoff column {name!r} does not hold dates"
        ) from None
    if pd.isna(cutoffs).any():
        raise TrainingInputError(
            "invalid_params", f"cutoff column {name!r} is missing in some rows"
        )
    return cutoffs, np.timedelta64(plan.horizon_days, "D")


def _candidate_inputs(
    columns: list[str], target: str | None, exclude: list[str], features: list[str] | None
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


def _schema_field(column: pd.Series, categorical: bool) -> dict[str, Any]:
    """What scoring checks a row's value against: the column's dtype as the table gave it,
    whether the model reads it as text, and whether training saw it missing (a value
    missing now where it never was is refused per row rather than guessed)."""
    return {
        "name": str(column.name),
        "dtype": str(column.dtype),
        "kind": "categorical" if categorical else "numeric",
        "nullable": bool(column.isna().any()),
    }


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


def _too_few(detail: str, classes: list[str], holdout: float, folds: int) -> TrainingInputError:
    return TrainingInputError(
        "too_few_rows",
        f"{detail}; with holdout {holdout} and {folds} folds each class needs at least "
        f"{folds + 1} training rows and 1 holdout row (about {rows_needed(holdout, folds)} "
        f"rows per class); add rows of class {'/'.join(map(repr, classes))}, or lower folds "
        "or the holdout share",
    )


def _check_class_counts(y: np.ndarray, names: dict[int, str], holdout: float, folds: int) -> None:
    counts = np.bincount(y, minlength=2)
    needed = rows_needed(holdout, folds)
    short = [label for label in (0, 1) if counts[label] < needed]
    if short:
        detail = ", ".join(f"class {names[label]!r} has {counts[label]} rows" for label in short)
        raise _too_few(detail, [names[0], names[1]], holdout, folds)


def _verify_split(
    y_train: np.ndarray, y_holdout: np.ndarray, classes: list[str], plan: SplitPlan
) -> None:
    """The pre-check is approximate (the split rounds, groups and time move rows); this
    checks the actual split: every class in every fold's reach and in the holdout."""
    size = len(classes)
    train, held = np.bincount(y_train, minlength=size), np.bincount(y_holdout, minlength=size)
    for label in range(size):
        if train[label] < plan.folds + 1 or held[label] < 1:
            raise _too_few(
                f"class {classes[label]!r} got {train[label]} training and {held[label]} "
                "holdout rows",
                classes,
                plan.holdout,
                plan.folds,
            )


def _verify_folds(
    y_train: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    classes: list[str],
    plan: SplitPlan,
) -> None:
    """Time-ordered and grouped folds do not stratify: a fold may fit on one class, or (binary)
    validate on one, where its score (ROC AUC) is undefined and every trial would fail."""
    for number, (fit_rows, valid_rows) in enumerate(folds, start=1):
        fitted, validated = np.unique(y_train[fit_rows]), np.unique(y_train[valid_rows])
        if len(fitted) < 2 or (len(classes) == 2 and len(validated) < 2):
            side, seen = ("fits", fitted) if len(fitted) < 2 else ("validates", validated)
            only = ", ".join(repr(classes[int(c)]) for c in seen) or "no rows"
            raise TrainingInputError(
                "too_few_rows",
                f"fold {number} of {len(folds)} ({plan.strategy}) {side} on class {only} only; "
                "every fold needs both classes to be scored. Use fewer folds, more cutoffs, or "
                "a stratified strategy",
            )

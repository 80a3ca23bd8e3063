"""Fill missing values by per-column rules: constant, statistics, KNN, iterative, group median.

Every statistic is learned from the raw training values of its own column (and the raw
``by`` column or predictors), so one column's rule never depends on another column's fill.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers it)
from sklearn.impute import IterativeImputer, KNNImputer

from workers.preprocessing.cleaning.base import (
    CleaningConfigError,
    FrameTransformer,
    all_missing,
    as_float,
    float_column,
    training_values,
)
from workers.preprocessing.columns import ColumnKind, column_kind

NUMERIC_ONLY = frozenset({"mean", "median", "knn", "iterative", "group_median"})
STRATEGIES = NUMERIC_ONLY | {"constant", "most_frequent"}
_BOOLEAN_CONSTANTS: dict[object, bool] = {0: False, 1: True, "false": False, "true": True}


class ColumnRule(TypedDict, total=False):
    """One column's rule, as plain data (an ImputeRule without ``drop``)."""

    strategy: str
    value: float | str | bool | None
    by: str | None
    indicator: bool


def check_rule(column: str, kind: ColumnKind, strategy: str, value: object = None) -> None:
    """Refuse a rule the column's kind cannot take (the builder checks before any data)."""

    def mismatch(why: str) -> CleaningConfigError:
        return CleaningConfigError("column_type_mismatch", f"column {column!r} is {kind}: {why}")

    if strategy in NUMERIC_ONLY and kind != "numeric":
        raise mismatch(f"strategy {strategy!r} needs a numeric column")
    if kind == "timestamp" and strategy not in ("constant", "drop"):
        raise mismatch(f"timestamps take only 'constant' or 'drop', not {strategy!r}")
    if strategy != "constant":
        return
    if kind == "numeric" and not isinstance(value, int | float):
        raise mismatch(f"the constant must be a number, got {value!r}")
    if kind == "categorical" and not isinstance(value, str):
        raise mismatch(f"the constant must be text (a JSON string), got {value!r}")
    if kind == "boolean" and _lowered(value) not in _BOOLEAN_CONSTANTS:
        raise mismatch(f"the constant must be true/false or 1/0, got {value!r}")
    if kind == "timestamp":
        try:
            pd.Timestamp(str(value))
        except ValueError as error:
            raise mismatch(f"the constant must be a timestamp, got {value!r}") from error


class MissingValueImputer(FrameTransformer):
    """Fill each column in ``rules`` by its strategy; optionally flag what was missing.

    rules: ``{column: {"strategy": ..., "value": ..., "by": ..., "indicator": bool}}`` with
    the strategies of ``ImputeRule`` except ``drop``. ``knn`` columns are imputed together by
    one KNNImputer fitted on at most ``knn_fit_max_rows`` training rows (sampled with
    ``seed``); ``iterative`` columns by one IterativeImputer that also uses
    ``iterative_predictors``. ``indicator`` adds ``<column>__was_missing`` (int8, 0/1).
    """

    def __init__(
        self,
        rules: Mapping[str, ColumnRule] | None = None,
        *,
        knn_neighbors: int = 5,
        knn_fit_max_rows: int = 50_000,
        iterative_max_iter: int = 10,
        iterative_predictors: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        self.rules = rules
        self.knn_neighbors = knn_neighbors
        self.knn_fit_max_rows = knn_fit_max_rows
        self.iterative_max_iter = iterative_max_iter
        self.iterative_predictors = iterative_predictors
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: object = None) -> MissingValueImputer:
        rules = dict(self.rules or {})
        for column, rule in rules.items():
            if rule["strategy"] not in STRATEGIES:
                raise ValueError(f"{column!r}: unknown strategy {rule['strategy']!r}")
        groups = [str(rule["by"]) for rule in rules.values() if rule.get("by")]
        frame = self._fit_frame(X, [*rules, *groups, *self.iterative_predictors])
        self.columns_ = [str(c) for c in frame.columns if c in rules]  # frame order
        self.strategies_ = {c: rules[c]["strategy"] for c in self.columns_}
        self.indicator_columns_ = [c for c in self.columns_ if rules[c].get("indicator")]
        clashes = [n for n in self._added_columns() if n in frame.columns]
        if clashes:
            raise CleaningConfigError(
                "column_exists", f"the frame already has indicator column(s) {clashes}"
            )
        for column in self.columns_:
            kind = column_kind(frame[column])
            check_rule(column, kind, self.strategies_[column], rules[column].get("value"))
        self.fill_values_: dict[str, Any] = {}
        self.group_by_: dict[str, str] = {}
        self.group_medians_: dict[str, dict[str, float]] = {}
        for column in self.columns_:
            self._fit_column(frame, column, rules[column])
        self.knn_columns_ = [c for c in self.columns_ if self.strategies_[c] == "knn"]
        self.knn_ = self._fit_knn(frame) if self.knn_columns_ else None
        self.iterative_columns_ = [c for c in self.columns_ if self.strategies_[c] == "iterative"]
        # Predictors with no training value carry nothing (IterativeImputer would drop them).
        self.predictors_ = [
            str(p)
            for p in dict.fromkeys(self.iterative_predictors)
            if p not in self.iterative_columns_ and frame[p].notna().any()
        ]
        self.iterative_ = self._fit_iterative(frame) if self.iterative_columns_ else None
        return self

    def _fit_column(self, frame: pd.DataFrame, column: str, rule: ColumnRule) -> None:
        strategy = rule["strategy"]
        if strategy == "constant":
            self.fill_values_[column] = rule.get("value")
            return
        hint = "use strategy 'constant' or add the column to `exclude`"
        step = f"strategy {strategy!r}"
        if strategy == "most_frequent":
            if not frame[column].notna().any():
                raise all_missing(column, step, hint)
            self.fill_values_[column] = _most_frequent(frame[column])
            return
        values = training_values(frame, column, step, hint)
        if strategy == "mean":
            self.fill_values_[column] = float(np.nanmean(values))
        elif strategy in ("median", "group_median"):
            self.fill_values_[column] = float(np.nanmedian(values))
        if strategy == "group_median":
            by = str(rule["by"])
            keys = _group_keys(frame[by]).to_numpy()
            medians = pd.Series(values).groupby(keys, dropna=True).median()
            self.group_by_[column] = by
            self.group_medians_[column] = {
                str(g): float(m) for g, m in medians.items() if not np.isnan(m)
            }

    def _fit_knn(self, frame: pd.DataFrame) -> KNNImputer:
        matrix = np.column_stack([as_float(frame[c]) for c in self.knn_columns_])
        # Rows with every KNN column missing can be no one's neighbour: sample the others.
        rows = np.flatnonzero(~np.isnan(matrix).all(axis=1))
        if len(rows) > self.knn_fit_max_rows:
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(rows, size=self.knn_fit_max_rows, replace=False))
        # keep_empty_features: a sparse column may have no value in the sample; keep shape.
        knn = KNNImputer(n_neighbors=self.knn_neighbors, keep_empty_features=True)
        return knn.fit(matrix[rows])

    def _fit_iterative(self, frame: pd.DataFrame) -> IterativeImputer:
        columns = [*self.iterative_columns_, *self.predictors_]
        matrix = np.column_stack([as_float(frame[c]) for c in columns])
        imputer = IterativeImputer(
            max_iter=self.iterative_max_iter, random_state=self.seed, keep_empty_features=True
        )
        with warnings.catch_warnings():
            # max_iter is the configured budget: not meeting the tolerance is no error.
            warnings.simplefilter("ignore", ConvergenceWarning)
            return imputer.fit(matrix)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = self._transform_frame(X)
        # Read from X, write into out: masks and group keys are the values before filling.
        missing = {c: X[c].isna().to_numpy() for c in self.columns_}
        filled: dict[str, np.ndarray] = {}
        if self.knn_ is not None:
            filled |= _model_fill(self.knn_, X, self.knn_columns_, [], missing)
        if self.iterative_ is not None:
            filled |= _model_fill(
                self.iterative_, X, self.iterative_columns_, self.predictors_, missing
            )
        for column in self.columns_:
            mask = missing[column]
            if not mask.any():
                continue
            series = X[column]
            if column in filled:
                out[column] = float_column(filled[column], series)
            elif column in self.group_medians_:
                keys = _group_keys(X[self.group_by_[column]])
                per_row = as_float(keys.map(self.group_medians_[column]))
                # Unseen and missing groups get the overall training median.
                per_row[np.isnan(per_row)] = self.fill_values_[column]
                out[column] = float_column(np.where(mask, per_row, as_float(series)), series)
            else:
                out[column] = _filled(series, mask, self.fill_values_[column])
        for column in self.indicator_columns_:
            out[f"{column}__was_missing"] = missing[column].astype(np.int8)
        return out

    def _added_columns(self) -> list[str]:
        return [f"{c}__was_missing" for c in self.indicator_columns_]


def _model_fill(
    model: KNNImputer | IterativeImputer,
    X: pd.DataFrame,
    targets: list[str],
    predictors: list[str],
    missing: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Targets filled by a fitted sklearn imputer, run on the rows that need it only."""
    matrix = np.column_stack([as_float(X[c]) for c in [*targets, *predictors]])
    rows = np.logical_or.reduce([missing[c] for c in targets])
    if rows.any():  # both imputers treat rows independently, so a subset gives the same
        matrix[rows] = model.transform(matrix[rows])
    return {c: matrix[:, i] for i, c in enumerate(targets)}


def _most_frequent(series: pd.Series) -> Any:
    counts = Counter(series.dropna().tolist())
    top = max(counts.values())
    # Ties: the smallest value, as SimpleImputer does (by type name first, for mixed columns).
    winner = min((v for v, n in counts.items() if n == top), key=lambda v: (type(v).__name__, v))
    if column_kind(series) == "numeric":
        return float(winner)
    return winner.item() if isinstance(winner, np.generic) else winner


def _group_keys(by: pd.Series) -> pd.Series:
    """Group labels as text (plain str dict keys for skops); missing labels stay missing."""
    return by.astype(object).astype(str)


def _filled(series: pd.Series, mask: np.ndarray, value: Any) -> pd.Series:
    kind = column_kind(series)
    if kind == "numeric":
        return float_column(np.where(mask, float(value), as_float(series)), series)
    if kind == "boolean":
        value = _BOOLEAN_CONSTANTS.get(_lowered(value), value)
    if kind == "timestamp":
        value = _timestamp_like(series, value)
    if isinstance(series.dtype, pd.CategoricalDtype) and value not in series.cat.categories:
        series = series.cat.add_categories([value])
    return series.where(~mask, value)


def _timestamp_like(series: pd.Series, value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(str(value))
    tz = getattr(series.dtype, "tz", None)
    if tz is not None:
        return stamp.tz_localize(tz) if stamp.tzinfo is None else stamp.tz_convert(tz)
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def _lowered(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value

"""What every cleaning transformer shares: the config error, frame checks, the passthrough.

Every transformer takes a pandas DataFrame, changes only its configured columns, passes the
others through in their order (added columns go last) and returns a new frame. Learned
state is plain Python or numpy (or an sklearn estimator) so that skops can store it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from workers.preprocessing.columns import column_kind

CleaningErrorCode = Literal[
    "column_missing",
    "column_type_mismatch",
    "column_all_missing",
    "column_exists",
    "input_too_large",
]


class CleaningConfigError(ValueError):
    """A cleaning config that does not fit the dataset; ``code`` is a stable error code."""

    def __init__(self, code: CleaningErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def describe_columns(names: Sequence[str], limit: int = 10) -> str:
    """A few column names for a message: a wide table must not flood it."""
    shown = [str(name) for name in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{shown}{more}"


def as_float(series: pd.Series) -> np.ndarray:
    """A numeric column as a new, writable float64 array with NaN for missing (nullable ints
    included); copy-on-write pandas may hand out read-only views of its data."""
    return np.array(series.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")


def require_numeric(frame: pd.DataFrame, column: str, step: str) -> None:
    kind = column_kind(frame[column])
    if kind != "numeric":
        raise CleaningConfigError(
            "column_type_mismatch",
            f"{step} needs a numeric column, but {column!r} is {kind}",
        )


def all_missing(column: str, step: str, suggestion: str) -> CleaningConfigError:
    return CleaningConfigError(
        "column_all_missing",
        f"column {column!r} is entirely missing in the training rows, so {step} "
        f"cannot be learned from it; {suggestion}",
    )


def training_values(frame: pd.DataFrame, column: str, step: str, suggestion: str) -> np.ndarray:
    """The column's training values; an all-missing column has nothing to learn from."""
    values = as_float(frame[column])
    if np.isnan(values).all():
        raise all_missing(column, step, suggestion)
    return values


def float_column(values: np.ndarray, like: pd.Series) -> pd.Series:
    return pd.Series(values, index=like.index, name=like.name, dtype="float64")


class FrameTransformer(TransformerMixin, BaseEstimator):
    """DataFrame in, new DataFrame out, with the same columns as at fit plus added ones."""

    def _fit_frame(self, X: Any, columns: Sequence[str]) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} takes a pandas DataFrame, got {type(X)}")
        unknown = [c for c in dict.fromkeys(columns) if c not in X.columns]
        if unknown:
            raise CleaningConfigError(
                "column_missing",
                f"{type(self).__name__}: the frame has no column(s) {unknown}; "
                f"its columns: {describe_columns(list(X.columns))}",
            )
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        return X

    def _transform_frame(self, X: Any) -> pd.DataFrame:
        """A copy of ``X`` to write into (copy-on-write: unchanged columns are not copied)."""
        check_is_fitted(self)
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} takes a pandas DataFrame, got {type(X)}")
        if [str(c) for c in X.columns] != list(self.feature_names_in_):
            raise ValueError(
                f"{type(self).__name__} was fitted on columns "
                f"{describe_columns(list(self.feature_names_in_))}, "
                f"got {describe_columns(list(X.columns))}"
            )
        return X.copy()

    def _added_columns(self) -> list[str]:
        return []

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray([*self.feature_names_in_, *self._added_columns()], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


class Passthrough(FrameTransformer):
    """The identity: the pipeline when nothing is to be cleaned, so an artifact always exists."""

    def fit(self, X: pd.DataFrame, y: object = None) -> Passthrough:
        self._fit_frame(X, [])
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return self._transform_frame(X)

"""Outliers: cap at learned bounds, scale robustly, flag anomalous rows (never delete them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from workers.preprocessing.cleaning.base import (
    CleaningConfigError,
    FrameTransformer,
    as_float,
    float_column,
    require_numeric,
    training_values,
)

_EXCLUDE_HINT = "add the column to `exclude` or fill it first (strategy 'constant')"


def _quartiles(values: np.ndarray) -> tuple[float, float]:
    # numpy's default (linear) quantiles, ignoring missing values.
    q1, q3 = np.nanquantile(values, [0.25, 0.75])
    return float(q1), float(q3)


class OutlierCapper(FrameTransformer):
    """Clip numeric columns to bounds learned on the training rows; NaN stays NaN.

    ``method="iqr"``: fences Q1 - iqr_k*IQR and Q3 + iqr_k*IQR; ``"quantile"``: the two
    ``quantiles``. Capped columns come out float64.
    """

    def __init__(
        self,
        columns: Sequence[str] = (),
        method: str = "iqr",
        iqr_k: float = 1.5,
        quantiles: tuple[float, float] = (0.01, 0.99),
    ) -> None:
        self.columns = columns
        self.method = method
        self.iqr_k = iqr_k
        self.quantiles = quantiles

    def fit(self, X: pd.DataFrame, y: object = None) -> OutlierCapper:
        if self.method not in ("iqr", "quantile"):
            raise ValueError(f"method must be 'iqr' or 'quantile', got {self.method!r}")
        frame = self._fit_frame(X, self.columns)
        self.lower_: dict[str, float] = {}
        self.upper_: dict[str, float] = {}
        for column in self.columns:
            require_numeric(frame, column, "outlier capping")
            values = training_values(frame, column, "capping bounds", _EXCLUDE_HINT)
            if self.method == "iqr":
                q1, q3 = _quartiles(values)
                low, high = q1 - self.iqr_k * (q3 - q1), q3 + self.iqr_k * (q3 - q1)
            else:
                low, high = (float(q) for q in np.nanquantile(values, list(self.quantiles)))
            self.lower_[column], self.upper_[column] = float(low), float(high)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = self._transform_frame(X)
        for column, low in self.lower_.items():
            clipped = np.clip(as_float(X[column]), low, self.upper_[column])
            out[column] = float_column(clipped, X[column])
        return out


class RobustScaling(FrameTransformer):
    """(x - median) / IQR with the median and IQR of the training rows; NaN stays NaN."""

    def __init__(self, columns: Sequence[str] = ()) -> None:
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: object = None) -> RobustScaling:
        frame = self._fit_frame(X, self.columns)
        self.center_: dict[str, float] = {}
        self.scale_: dict[str, float] = {}
        for column in self.columns:
            require_numeric(frame, column, "robust scaling")
            values = training_values(frame, column, "the median and IQR", _EXCLUDE_HINT)
            q1, q3 = _quartiles(values)
            self.center_[column] = float(np.nanmedian(values))
            # IQR 0 (a constant or mostly constant column) would divide by zero; dividing by 1
            # still centres the column and keeps its values finite, as sklearn's RobustScaler.
            self.scale_[column] = (q3 - q1) or 1.0
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = self._transform_frame(X)
        for column, center in self.center_.items():
            scaled = (as_float(X[column]) - center) / self.scale_[column]
            out[column] = float_column(scaled, X[column])
        return out


class IsolationForestFlagger(FrameTransformer):
    """Add ``flag_column`` (int8): 1 where an IsolationForest fitted on training rows says
    outlier. Rows are never deleted; missing inputs take the training median (forest only)."""

    def __init__(
        self,
        columns: Sequence[str] = (),
        contamination: float | str = "auto",
        flag_column: str = "is_outlier",
        seed: int = 0,
    ) -> None:
        self.columns = columns
        self.contamination = contamination
        self.flag_column = flag_column
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: object = None) -> IsolationForestFlagger:
        if not self.columns:
            raise ValueError("IsolationForestFlagger needs at least one column")
        frame = self._fit_frame(X, self.columns)
        if self.flag_column in frame.columns:
            raise CleaningConfigError(
                "column_exists",
                f"the isolation-forest flag column {self.flag_column!r} already exists; "
                "choose another outliers.isolation_forest.flag_column",
            )
        self.fill_values_: dict[str, float] = {}
        for column in self.columns:
            require_numeric(frame, column, "the isolation forest")
            values = training_values(frame, column, "the isolation forest", _EXCLUDE_HINT)
            self.fill_values_[column] = float(np.nanmedian(values))
        forest = IsolationForest(contamination=self.contamination, random_state=self.seed)
        self.forest_ = forest.fit(self._matrix(frame))
        return self

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        columns = []
        for column, fill in self.fill_values_.items():
            values = as_float(frame[column])
            columns.append(np.where(np.isnan(values), fill, values))
        return np.column_stack(columns)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = self._transform_frame(X)
        flags = np.zeros(len(X), dtype=np.int8)
        if len(X):  # the forest refuses an empty matrix
            flags = (self.forest_.predict(self._matrix(X)) == -1).astype(np.int8)
        out[self.flag_column] = pd.Series(flags, index=X.index)
        return out

    def _added_columns(self) -> list[str]:
        return [self.flag_column]

"""What kind of data a column holds, as every preprocessing step sees it."""

from __future__ import annotations

from typing import Literal

import pandas as pd

ColumnKind = Literal["numeric", "categorical", "timestamp", "boolean"]


def column_kind(series: pd.Series) -> ColumnKind:
    """numeric (ints, floats), boolean, timestamp (datetimes, tz-aware or not) or categorical
    (text, pandas categoricals and anything else)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    return "categorical"


def column_kinds(frame: pd.DataFrame) -> dict[str, ColumnKind]:
    return {str(name): column_kind(frame[name]) for name in frame.columns}

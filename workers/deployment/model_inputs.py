"""A version's input schema as scoring reads it: which values may be missing, and the
frame the pipeline expects (text columns as pandas "str", as training gave them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from workers.training.pipeline import model_frame

TEXT_DTYPES = ("str", "string", "object", "category")


def is_categorical(field: Mapping[str, Any]) -> bool:
    kind = field.get("kind")
    if kind is not None:
        return bool(kind == "categorical")
    return str(field["dtype"]) in TEXT_DTYPES  # versions registered before "kind"


def nullable_of(schema: Sequence[Mapping[str, Any]]) -> Callable[[str], bool] | None:
    """Missing values are allowed where training saw them; None (the dtype's default) for
    versions registered before the schema recorded it."""
    flags = {str(f["name"]): bool(f["nullable"]) for f in schema if "nullable" in f}
    if not flags:
        return None
    return lambda name: flags.get(name, True)


def to_model_frame(frame: pd.DataFrame, schema: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    names = [str(f["name"]) for f in schema]
    text = [str(f["name"]) for f in schema if is_categorical(f)]
    if list(frame.columns) == names:
        # Already the schema's columns in order (validate_rows builds it so): only the text
        # columns' cast of model_frame is left, and the frame is not copied.
        cast = {c: "str" for c in text if frame[c].dtype != "str"}
        return frame.astype(cast) if cast else frame
    numeric = [name for name in names if name not in text]
    return model_frame(frame[names], numeric, text)

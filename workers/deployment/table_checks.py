"""A dataset scored by reference, checked against the version's inputs chunk by chunk:
a missing or mistyped column stops the job (every row would fail alike); a missing or
infinite value rejects only its row, with a code in the output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from api_client.contract import ErrorCode
from workers.deployment.model_inputs import is_categorical
from workers.jobs.errors import JobError


@dataclass(frozen=True)
class ChunkCheck:
    valid: np.ndarray  # bool per row
    error_code: list[str | None]  # the first problem of each rejected row
    error_column: list[str | None]


def check_columns(
    columns: Mapping[str, str], schema: Sequence[Mapping[str, Any]], key_column: str
) -> None:
    """``columns``: the dataset's column name -> pandas dtype."""
    names = [str(f["name"]) for f in schema]
    missing = [n for n in [key_column, *names] if n not in columns]
    if missing:
        raise JobError(
            ErrorCode.COLUMN_MISSING,
            f"the dataset lacks column(s) {missing} that the model version needs; score a "
            "dataset built like its training data (the same build_features params)",
        )
    mistyped = [
        f"{f['name']} ({columns[str(f['name'])]}, trained on {f['dtype']})"
        for f in schema
        if not is_categorical(f) and not _numeric_like(columns[str(f["name"])])
    ]
    if mistyped:
        raise JobError(
            ErrorCode.COLUMN_TYPE_MISMATCH,
            f"numeric input(s) arrive as text: {', '.join(mistyped)}; cast them before "
            "ingesting or rebuild the dataset",
        )


def check_chunk(
    frame: pd.DataFrame, schema: Sequence[Mapping[str, Any]], key_column: str
) -> ChunkCheck:
    n = len(frame)
    codes: list[str | None] = [None] * n
    where: list[str | None] = [None] * n

    def mark(mask: np.ndarray, code: str, column: str) -> None:
        for i in np.flatnonzero(mask):
            if codes[i] is None:
                codes[i], where[i] = code, column

    mark(frame[key_column].isna().to_numpy(), ErrorCode.ROUTING_KEY_MISSING.value, key_column)
    for field in schema:
        name = str(field["name"])
        column = frame[name]
        if not is_categorical(field) and column.dtype != bool:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            mark(np.isinf(values), ErrorCode.VALUE_NOT_FINITE.value, name)
        if not field.get("nullable", True):
            mark(column.isna().to_numpy(), ErrorCode.VALUE_MISSING.value, name)
    valid = np.array([code is None for code in codes], dtype=bool)
    return ChunkCheck(valid, codes, where)


def _numeric_like(dtype: str) -> bool:
    return dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float", "bool", "boolean"))

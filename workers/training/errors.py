"""The refusal of a training request that does not fit its table, before any trial runs.

``code`` is stable (docs/errors.md); the message names the column and the counts, so that
a person can fix the request without reading the code.
"""

from __future__ import annotations

from typing import Literal

TrainingInputErrorCode = Literal[
    "column_missing",
    "target_missing_values",
    "target_single_class",
    "target_not_binary",
    "target_not_numeric",
    "target_class_too_small",
    "invalid_params",
    "no_features",
    "too_few_rows",
    "too_few_cutoffs",
    "max_features_too_large",
]


class TrainingInputError(ValueError):
    """A training request that does not fit the table; ``code`` is a stable error code."""

    def __init__(self, code: TrainingInputErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code

"""The base of every request schema: strict, closed, immutable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Column names as tables carry them (any text but empty or absurdly long).
ColumnName = Annotated[str, Field(min_length=1, max_length=300)]

# Datetimes arrive from JSON as ISO-8601 strings; strict models would refuse them.
Timestamp = Annotated[datetime, Field(strict=False)]

DatasetName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class StrictModel(BaseModel):
    """Unknown fields and silent type coercion are refused: a typo is an error, not a default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

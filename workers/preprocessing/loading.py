"""Load a registered dataset by id: its row (as plain facts) and its verified Parquet table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from api_client.contract import ErrorCode
from storage.datasets import DatasetRepository
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError


@dataclass(frozen=True)
class DatasetFacts:
    id: int
    name: str
    version: int
    sha256: str
    rows: int
    columns: int
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "rows": self.rows,
            "columns": self.columns,
        }


def load_dataset(ctx: JobContext, dataset_id: int) -> tuple[DatasetFacts, pd.DataFrame]:
    """The dataset's facts and table; FAILED ``dataset_not_found`` when the id is unknown,
    ``artifact_corrupt`` / ``artifact_not_found`` when its file is damaged or gone."""
    facts = dataset_facts(ctx, dataset_id)
    return facts, read_table(ctx, facts)


def read_table(ctx: JobContext, facts: DatasetFacts) -> pd.DataFrame:
    """The dataset's table, its bytes verified against the recorded sha256 first."""
    ctx.progress("load", 0, 1, f"load: {facts.name} v{facts.version} ({facts.rows:,} rows)")
    with ctx.runtime.store.open_verified(facts.sha256) as handle:
        return pd.read_parquet(handle)


def dataset_facts(ctx: JobContext, dataset_id: int) -> DatasetFacts:
    with ctx.session() as session:
        dataset = DatasetRepository(session).get(dataset_id)
        if dataset is None:
            raise JobError(
                ErrorCode.DATASET_NOT_FOUND,
                f"no dataset with id {dataset_id}; the result of the ingest_dataset job that "
                "registered it holds its dataset_id (`cipml status <job id>`)",
            )
        facts = DatasetFacts(
            id=dataset.id,
            name=dataset.name,
            version=dataset.version,
            sha256=dataset.stored_sha256,
            rows=dataset.rows,
            columns=dataset.columns,
            created_at=dataset.created_at,
        )
    return facts


def require_rows(facts: DatasetFacts, frame: pd.DataFrame) -> None:
    if frame.shape[0] == 0:
        raise JobError(
            ErrorCode.DATASET_EMPTY,
            f"dataset {facts.name} v{facts.version} (id {facts.id}) has no rows; ingest a file "
            "with data",
        )

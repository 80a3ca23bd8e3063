"""The ingest_dataset job: resolve, hash (dedupe), stream to Parquet, store, register."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from api_client.schemas import IngestParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.models import Dataset
from workers.jobs.context import JobContext
from workers.preprocessing.ingest import Ingested, Limits, hash_source, ingest
from workers.preprocessing.sources import resolve_source


def dataset_summary(dataset: Dataset, artifact_uri: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "artifact_uri": artifact_uri,
        "dataset_id": dataset.id,
        "name": dataset.name,
        "version": dataset.version,
        "rows": dataset.rows,
        "columns": dataset.columns,
        "source_sha256": dataset.source_sha256,
        "sha256": dataset.stored_sha256,
        "source_uri": dataset.source_uri,
        **extra,
    }


def run_ingest(ctx: JobContext, params: IngestParams) -> dict[str, Any]:
    settings = ctx.settings
    source = resolve_source(
        params.uri, settings.input_roots, params.format, settings.ingest_max_bytes
    )
    source_sha256 = hash_source(source, ctx.progress)
    with ctx.session() as session:
        existing = DatasetRepository(session).by_source(params.name, source_sha256)
        if existing is not None:
            artifact = ArtifactRepository(session).get(existing.stored_sha256)
            return dataset_summary(existing, artifact.uri if artifact else None, deduplicated=True)
    limits = Limits(
        max_columns=settings.ingest_max_columns,
        max_rows=settings.ingest_max_rows,
        block_bytes=settings.ingest_block_bytes,
    )
    scratch = ctx.runtime.store.scratch_dir()  # the Parquet is then renamed into the store
    with tempfile.TemporaryDirectory(prefix="cipml-ingest-", dir=scratch) as folder:
        out_path = os.path.join(folder, "data.parquet")
        outcome = ingest(source, out_path, dict(params.dtypes or {}), limits, ctx.progress)
        ctx.progress("store", 0, 1, f"store: {outcome.rows:,} rows as Parquet", force=True)
        stored = ctx.runtime.store.put_file(out_path, move=True)
    summary = _register(ctx, params, source.uri, source_sha256, stored, outcome)
    ctx.progress(
        "done",
        1,
        1,
        (
            f"ingest: done, {outcome.rows:,} rows in {outcome.blocks} "
            f"blocks -> {params.name} v{summary['version']}"
        ),
        force=True,
    )
    return summary


def _register(
    ctx: JobContext,
    params: IngestParams,
    source_uri: str,
    source_sha256: str,
    stored: Any,
    outcome: Ingested,
) -> dict[str, Any]:
    with ctx.session() as session:
        ArtifactRepository(session).record(stored, media_type="application/vnd.apache.parquet")
        dataset, created = DatasetRepository(session).register(
            Dataset(
                name=params.name,
                source_sha256=source_sha256,
                stored_sha256=stored.sha256,
                rows=outcome.rows,
                columns=outcome.columns,
                schema=outcome.schema,
                source_uri=source_uri,
                created_by_job=ctx.job_id,
            )
        )
        session.flush()
        return dataset_summary(
            dataset,
            stored.uri,
            deduplicated=not created,
            blocks=outcome.blocks,
            widened=outcome.widened,
            schema=outcome.schema,
        )

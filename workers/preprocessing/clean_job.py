"""The clean job: fit the cleaning pipeline on the training period, apply it to every row,
store the cleaned table and the fitted pipeline (skops), register both with lineage."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from api_client.contract import ErrorCode
from api_client.quality_params import CleanParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.models import Dataset
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.preprocessing.cleaning import (
    CleaningConfigError,
    build_cleaning_pipeline,
    dump_pipeline,
    library_versions,
)
from workers.preprocessing.columns import column_kinds
from workers.preprocessing.ingest_job import dataset_summary
from workers.preprocessing.loading import (
    DatasetFacts,
    dataset_facts,
    read_table,
    require_rows,
)
from workers.preprocessing.quality.profile import as_utc_naive


def run_clean(ctx: JobContext, params: CleanParams) -> dict[str, Any]:
    facts = dataset_facts(ctx, params.dataset_id)
    name = params.name or f"{facts.name}.clean"
    existing = _already_registered(ctx, name)
    if existing is not None:
        return existing  # a redelivered job: the output exists, do not even read the input
    frame = read_table(ctx, facts)
    require_rows(facts, frame)
    frame = _drop_columns(frame, params)
    kinds = column_kinds(frame)
    frame, duplicates_dropped = _drop_duplicates(frame, params)
    train = _training_rows(frame, params, kinds)
    params, untouched = _skip_all_missing(params, train, kinds)
    try:
        plan = build_cleaning_pipeline(params, kinds, len(frame), ctx.settings.clean_knn_max_rows)
        ctx.progress("fit", 0, 1, f"clean: fit {len(plan.steps)} step(s) on {len(train):,} rows")
        plan.pipeline.fit(train)
        ctx.progress("transform", 0, 1, f"clean: transform {len(frame):,} rows")
        cleaned = plan.pipeline.transform(frame)
    except CleaningConfigError as exc:
        raise JobError(exc.code, str(exc)) from None
    before_drop = len(cleaned)
    if plan.drop_missing_columns:
        cleaned = cleaned.dropna(subset=plan.drop_missing_columns)
    lineage = {
        "parent_dataset_id": facts.id,
        "parent_sha256": facts.sha256,
        "fit_on": params.fit_on.model_dump(mode="json") if params.fit_on else None,
        "fit_rows": len(train),
        "steps": plan.steps,
        "rows_in": facts.rows,
        "columns_dropped": list(params.drop_columns),
        "duplicates_dropped": duplicates_dropped,
        "missing_rows_dropped": before_drop - len(cleaned),
        "left_untouched_all_missing": untouched,
        "libraries": library_versions(),
    }
    ctx.progress("store", 0, 1, f"clean: store {len(cleaned):,} rows", force=True)
    return _store_and_register(ctx, facts, name, cleaned, dump_pipeline(plan.pipeline), lineage)


def _already_registered(ctx: JobContext, name: str) -> dict[str, Any] | None:
    with ctx.session() as session:
        dataset = DatasetRepository(session).by_job(ctx.job_id, name)
        if dataset is None:
            return None
        artifact = ArtifactRepository(session).get(dataset.stored_sha256)
        return _summary(dataset, artifact.uri if artifact else None, deduplicated=True)


def _drop_columns(frame: pd.DataFrame, params: CleanParams) -> pd.DataFrame:
    unknown = sorted(set(params.drop_columns) - {str(c) for c in frame.columns})
    if unknown:
        raise JobError(
            ErrorCode.COLUMN_MISSING,
            f"drop_columns names {unknown}, not in the dataset; it has: "
            + ", ".join(str(c) for c in list(frame.columns)[:20]),
        )
    return frame.drop(columns=list(params.drop_columns)) if params.drop_columns else frame


def _drop_duplicates(frame: pd.DataFrame, params: CleanParams) -> tuple[pd.DataFrame, int]:
    """Row operations come before fitting: a duplicate must not weigh twice in a median."""
    if params.duplicates == "keep":
        return frame, 0
    missing = sorted(set(params.key_columns) - {str(c) for c in frame.columns})
    if missing:
        raise JobError(ErrorCode.COLUMN_MISSING, f"key_columns not in the dataset: {missing}")
    if params.duplicates == "drop_rows":
        kept = frame.drop_duplicates(keep="first")
    else:
        ordered = frame
        time_column = params.fit_on.time_column if params.fit_on else None
        if time_column is not None and time_column in frame.columns:
            ordered = frame.sort_values(time_column, kind="stable")  # last = newest
        kept = ordered.drop_duplicates(subset=list(params.key_columns), keep="last")
        kept = kept.sort_index()
    return kept.reset_index(drop=True), len(frame) - len(kept)


def _training_rows(
    frame: pd.DataFrame, params: CleanParams, kinds: Mapping[str, str]
) -> pd.DataFrame:
    """The rows every step is fitted on: before ``fit_on.before``, or all rows."""
    if params.fit_on is None:
        return frame
    column = params.fit_on.time_column
    if column not in kinds:
        raise JobError(
            ErrorCode.COLUMN_MISSING,
            f"fit_on.time_column {column!r} is not in the dataset; it has: "
            + ", ".join(list(kinds)[:20]),
        )
    if kinds[column] != "timestamp":
        raise JobError(
            ErrorCode.COLUMN_TYPE_MISMATCH,
            f"fit_on.time_column {column!r} holds {kinds[column]} values, not timestamps",
        )
    before = pd.Timestamp(params.fit_on.before)
    cutoff = (before.tz_convert("UTC") if before.tzinfo else before).tz_localize(None)
    mask = as_utc_naive(frame[column]) < cutoff.to_datetime64()
    train = frame.loc[mask]
    if train.empty:
        raise JobError(
            ErrorCode.NO_ROWS,
            f"no rows before {params.fit_on.before.isoformat()} in {column!r} to fit on; the "
            f"data spans {frame[column].min()} .. {frame[column].max()}",
        )
    return train


def _skip_all_missing(
    params: CleanParams, train: pd.DataFrame, kinds: Mapping[str, str]
) -> tuple[CleanParams, list[str]]:
    """Columns entirely missing in the training rows have nothing to learn from: default rules
    leave them untouched (and the result says so). A step naming one explicitly still fails
    with ``column_all_missing`` at fit."""
    outliers = params.outliers
    named = (
        set(params.missing.columns)
        | set(outliers.columns or [])
        | set(outliers.robust_scale)
        | set(outliers.isolation_forest.columns or [] if outliers.isolation_forest else [])
    )
    empty = [
        str(c)
        for c in train.columns
        if str(c) not in named and str(c) not in params.exclude and train[c].isna().all()
    ]
    if not empty:
        return params, []
    return params.model_copy(update={"exclude": [*params.exclude, *empty]}), empty


def _store_and_register(
    ctx: JobContext,
    facts: DatasetFacts,
    name: str,
    cleaned: pd.DataFrame,
    pipeline_bytes: bytes,
    lineage: dict[str, Any],
) -> dict[str, Any]:
    store = ctx.runtime.store
    table = pa.Table.from_pandas(cleaned, preserve_index=False)
    with tempfile.TemporaryDirectory(prefix="cipml-clean-", dir=store.scratch_dir()) as folder:
        path = os.path.join(folder, "data.parquet")
        pq.write_table(table, path)
        stored = store.put_file(path, move=True)
    pipeline = store.put_bytes(pipeline_bytes)
    lineage["pipeline_bytes"] = len(pipeline_bytes)
    with ctx.session() as session:
        artifacts = ArtifactRepository(session)
        artifacts.record(stored, media_type="application/vnd.apache.parquet")
        artifacts.record(pipeline, media_type="application/x-skops")
        dataset, created = DatasetRepository(session).register(
            Dataset(
                name=name,
                stored_sha256=stored.sha256,
                rows=table.num_rows,
                columns=table.num_columns,
                schema=[{"name": f.name, "dtype": str(f.type)} for f in table.schema],
                source_uri=f"dataset:{facts.id}",
                created_by_job=ctx.job_id,
                parent_id=facts.id,
                pipeline_sha256=pipeline.sha256,
                lineage=lineage,
            )
        )
        session.flush()
        summary = _summary(dataset, stored.uri, deduplicated=not created)
    ctx.progress(
        "done", 1, 1, f"clean: {name} v{summary['version']}, {summary['rows']:,} rows", force=True
    )
    return summary


def _summary(dataset: Dataset, uri: str | None, **extra: Any) -> dict[str, Any]:
    lineage = dataset.lineage or {}
    return dataset_summary(
        dataset,
        uri,
        parent_dataset_id=dataset.parent_id,
        pipeline_sha256=dataset.pipeline_sha256,
        steps=[step["name"] for step in lineage.get("steps", [])],
        columns_dropped=lineage.get("columns_dropped", []),
        duplicates_dropped=lineage.get("duplicates_dropped", 0),
        missing_rows_dropped=lineage.get("missing_rows_dropped", 0),
        left_untouched_all_missing=lineage.get("left_untouched_all_missing", []),
        **extra,
    )

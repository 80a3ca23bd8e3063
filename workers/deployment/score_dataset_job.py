"""score_dataset: a registered dataset scored by reference, chunk by chunk, into a new
dataset (key, prediction id, version, arm, score, label, error), every prediction logged."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from api_client.registry_params import ScoreDatasetParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.jobs import JobRepository
from storage.models import Dataset
from storage.prediction_log import PredictionLog
from workers.deployment.errors import ScoringError
from workers.deployment.log_records import log_records
from workers.deployment.model_inputs import to_model_frame
from workers.deployment.outputs import score_rows
from workers.deployment.resolve import version_for_alias
from workers.deployment.routing import Arm, route_all
from workers.deployment.services import scoring_services
from workers.deployment.serving import ServingVersion, load_pipeline_for, pipeline_cache
from workers.deployment.table_checks import check_chunk, check_columns
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.preprocessing.loading import dataset_facts

PARQUET = "application/vnd.apache.parquet"


def run_score_dataset(ctx: JobContext, params: ScoreDatasetParams) -> dict[str, Any]:
    facts = dataset_facts(ctx, params.dataset_id)
    services = scoring_services(ctx.runtime)
    with ctx.session() as session:
        try:
            version = ServingVersion.of(version_for_alias(session, params.model_name, params.alias))
        except ScoringError as exc:
            raise JobError(exc.code, exc.message) from exc
        job = JobRepository(session).require(ctx.job_id)
        # Every delivery of this job scores "as of" its submission: the same prediction
        # ids and log batches, so a redelivered job logs each chunk once.
        as_of = job.created_at
    try:
        pipeline = load_pipeline_for(
            version,
            ctx.runtime.store,
            pipeline_cache(ctx.settings.pipeline_cache_size),
            ctx.settings.artifact_hmac_key,
        )
    except ScoringError as exc:
        raise JobError(exc.code, exc.message) from exc
    scorer = ChunkScorer(ctx, services.log_store, version, pipeline, params, as_of)
    counts = scorer.counts
    scratch = ctx.runtime.store.scratch_dir() or tempfile.gettempdir()
    out_path = os.path.join(scratch, f"scored-{ctx.job_id}.parquet")
    writer: pq.ParquetWriter | None = None
    started = time.perf_counter()
    try:
        with ctx.runtime.store.open_verified(facts.sha256) as handle:
            source = pq.ParquetFile(handle)
            arrow_schema = source.schema_arrow
            check_columns(
                {n: _pandas_dtype(arrow_schema.field(n).type) for n in arrow_schema.names},
                version.input_schema,
                params.key_column,
            )
            needed = [params.key_column] + [str(f["name"]) for f in version.input_schema]
            needed = list(dict.fromkeys(needed))
            row0 = 0
            for number, batch in enumerate(
                source.iter_batches(batch_size=ctx.settings.score_chunk_rows, columns=needed)
            ):
                frame = batch.to_pandas()
                table = scorer.score(frame, number, row0)
                writer = writer or pq.ParquetWriter(out_path, table.schema, compression="zstd")
                writer.write_table(table)
                row0 += len(frame)
                ctx.progress(
                    "score",
                    row0,
                    facts.rows,
                    f"score: {row0:,}/{facts.rows:,} rows ({counts['rejected']:,} rejected)",
                )
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise JobError("dataset_empty", f"dataset {facts.name} (id {facts.id}) has no rows")
    stored = ctx.runtime.store.put_file(out_path, move=True)
    name = params.output_name or f"{facts.name}-scored"
    elapsed = time.perf_counter() - started
    with ctx.session() as session:
        ArtifactRepository(session).record(stored, media_type=PARQUET)
        dataset, created = DatasetRepository(session).register(
            Dataset(
                name=name,
                stored_sha256=stored.sha256,
                rows=row0,
                columns=len(table.schema),
                schema=[{"name": f.name, "dtype": str(f.type)} for f in table.schema],
                source_uri=f"dataset:{facts.id}",
                created_by_job=ctx.job_id,
                parent_id=facts.id,
                lineage={
                    "parent_dataset_id": facts.id,
                    "parent_sha256": facts.sha256,
                    "scored_by": {
                        "model_name": version.model_name,
                        "version": version.version,
                        "version_id": version.id,
                        "alias": params.alias,
                    },
                    "counts": counts,
                },
            )
        )
        session.flush()
        summary = {
            "dataset_id": dataset.id,
            "name": dataset.name,
            "version": dataset.version,
            "sha256": dataset.stored_sha256,
            "rows": dataset.rows,
            "model_name": version.model_name,
            "model_version": version.version,
            "alias": params.alias,
            "scored": counts["scored"],
            "rejected": counts["rejected"],
            "logged": params.log_predictions,
            "rows_per_s": round(row0 / elapsed, 1) if elapsed > 0 else None,
            "deduplicated": not created,
        }
    ctx.progress("done", 1, 1, f"score: {name} v{summary['version']}", force=True)
    return summary


@dataclass
class ChunkScorer:
    ctx: JobContext
    log_store: PredictionLog
    version: ServingVersion
    pipeline: Any
    params: ScoreDatasetParams
    as_of: datetime
    counts: dict[str, int] = field(default_factory=lambda: {"scored": 0, "rejected": 0})

    def score(self, frame: pd.DataFrame, number: int, row0: int) -> pa.Table:
        """Score one chunk, log its predictions (batch id = job + chunk number: logged once
        however often the job is delivered) and return its rows of the output table."""
        version, params = self.version, self.params
        checked = check_chunk(frame, version.input_schema, params.key_column)
        ok = checked.valid
        keys = frame[params.key_column].astype("string").fillna("").tolist()
        ids = _prediction_ids(self.ctx.job_id, row0, len(frame), self.as_of)
        valid_keys = [key for key, good in zip(keys, ok, strict=True) if good]
        routed = route_all(
            valid_keys, [Arm(params.alias, version.id, 1.0)], salt=version.model_name
        )
        valid = frame.loc[ok]
        started = time.perf_counter()
        outputs = score_rows(self.pipeline, to_model_frame(valid, version.input_schema), version)
        latency_ms = (time.perf_counter() - started) * 1000 / max(len(valid), 1)
        if params.log_predictions and len(valid):
            records = log_records(
                version,
                [arm.name for arm in routed],
                valid_keys,
                outputs,
                valid[[str(f["name"]) for f in version.input_schema]],
                latency_ms=latency_ms,
                at=self.as_of,
                prediction_ids=[i for i, good in zip(ids, ok, strict=True) if good],
            )
            with self.ctx.session() as session:
                self.log_store.write(
                    session, version.model_name, records, f"{self.ctx.job_id}-{number}"
                )
        n = len(frame)
        score = np.full(n, np.nan)
        score[ok] = outputs.score
        label: list[str | None] = [None] * n
        arm: list[str | None] = [None] * n
        for position, out_label, routed_arm in zip(
            np.flatnonzero(ok), outputs.label, routed, strict=True
        ):
            label[position], arm[position] = out_label, routed_arm.name
        self.counts["scored"] += int(ok.sum())
        self.counts["rejected"] += int(n - ok.sum())
        return pa.table(
            {
                params.key_column: pa.array(keys, pa.string()),
                "prediction_id": pa.array(
                    [i if good else None for i, good in zip(ids, ok, strict=True)], pa.string()
                ),
                "model_version": pa.array([version.version] * n, pa.string()),
                "arm": pa.array(arm, pa.string()),
                "score": pa.array(score, pa.float64(), from_pandas=True),
                "label": pa.array(label, pa.string()),
                "error": pa.array(checked.error_code, pa.string()),
                "error_column": pa.array(checked.error_column, pa.string()),
            }
        )


def _prediction_ids(job_id: str, row0: int, n: int, as_of: datetime) -> list[str]:
    """Deterministic per (job, row): a redelivered job gives every row the id it had."""
    prefix = f"{int(as_of.timestamp() * 1000):012x}"
    return [
        prefix + hashlib.sha256(f"{job_id}:{row0 + i}".encode()).hexdigest()[:20] for i in range(n)
    ]


def _pandas_dtype(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type):
        return "float64"
    return "str"

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
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from api_client.registry_params import ScoreDatasetParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.jobs import JobRepository
from storage.models import Dataset
from storage.prediction_log import PredictionLog
from workers.deployment.errors import ScoringError
from workers.deployment.log_records import constant, log_table
from workers.deployment.model_inputs import to_model_frame
from workers.deployment.outputs import Outputs, score_rows
from workers.deployment.resolve import version_for_alias
from workers.deployment.routing import Arm, route_all
from workers.deployment.services import scoring_services
from workers.deployment.serving import ServingVersion, pipeline_for
from workers.deployment.table_checks import ChunkCheck, check_chunk, check_columns
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
        pipeline = pipeline_for(version, ctx.runtime.store, ctx.settings)
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
                table = scorer.score(batch, number, row0)
                writer = writer or pq.ParquetWriter(out_path, table.schema, compression="zstd")
                writer.write_table(table)
                row0 += batch.num_rows
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

    def score(self, batch: pa.RecordBatch, number: int, row0: int) -> pa.Table:
        """Score one chunk, log its predictions (batch id = job + chunk number: logged once
        however often the job is delivered) and return its rows of the output table."""
        version, params = self.version, self.params
        frame = batch.to_pandas()
        checked = check_chunk(frame, version.input_schema, params.key_column)
        ok = checked.valid
        everyone = bool(ok.all())
        mask = pa.array(ok)
        keys = batch.column(params.key_column).cast(pa.string())
        ids = _prediction_ids(self.ctx.job_id, row0, batch.num_rows, self.as_of)
        valid_keys = keys if everyone else keys.filter(mask)
        arms = self._arms_of(valid_keys)
        valid = frame if everyone else frame.loc[ok]
        started = time.perf_counter()
        outputs = score_rows(self.pipeline, to_model_frame(valid, version.input_schema), version)
        latency_ms = (time.perf_counter() - started) * 1000 / max(len(valid), 1)
        if params.log_predictions and len(valid):
            inputs = batch.select([str(f["name"]) for f in version.input_schema])
            records = log_table(
                version,
                arms,
                valid_keys,
                outputs,
                pa.Table.from_batches([inputs if everyone else inputs.filter(mask)]),
                latency_ms=latency_ms,
                at=self.as_of,
                prediction_ids=ids if everyone else ids.filter(mask),
            )
            with self.ctx.session() as session:
                self.log_store.write(
                    session, version.model_name, records, f"{self.ctx.job_id}-{number}"
                )
        self.counts["scored"] += int(ok.sum())
        self.counts["rejected"] += int(batch.num_rows - ok.sum())
        scored = Scored(ok, ids, arms, outputs)
        return _output_table(params.key_column, keys, scored, checked, version.version)

    def _arms_of(self, keys: pa.Array) -> list[str]:
        """The arm of each valid row through the routing layer (which hashes no key while
        one arm takes all traffic), or one name when every row went to the same arm."""
        arms = [Arm(self.params.alias, self.version.id, 1.0)]
        names = [arm.name for arm in route_all(keys.to_pylist(), arms, self.version.model_name)]
        return names[:1] if len(set(names)) == 1 else names


@dataclass(frozen=True)
class Scored:
    ok: np.ndarray  # which rows of the chunk were scored
    ids: pa.Array  # prediction id of every row of the chunk
    arms: list[str]  # arm of each scored row, or one name for all of them
    outputs: Outputs  # of the scored rows


def _output_table(
    key_column: str, keys: pa.Array, scored: Scored, checked: ChunkCheck, model_version: str
) -> pa.Table:
    """The chunk's output rows: every input row, scored or with its error."""
    n, ok = len(keys), scored.ok
    one_arm = len(scored.arms) == 1
    arms = constant(scored.arms[0], int(ok.sum())) if one_arm else pa.array(scored.arms)
    score, label = pa.array(scored.outputs.score, pa.float64()), scored.outputs.label_array()
    ids = scored.ids
    if not ok.all():  # spread the scored rows' columns over the chunk, nulls elsewhere
        positions = np.flatnonzero(ok)
        take = np.zeros(n, dtype=np.int64)
        take[positions] = np.arange(len(positions))
        index = pa.array(take, mask=~ok)
        score, label, arms = score.take(index), label.take(index), arms.take(index)
        ids = pc.if_else(pa.array(ok), ids, pa.scalar(None, pa.string()))
    return pa.table(
        {
            key_column: keys,
            "prediction_id": ids,
            "model_version": constant(model_version, n),
            "arm": arms,
            "score": score,
            "label": label,
            "error": pa.array(checked.error_code, pa.string()),
            "error_column": pa.array(checked.error_column, pa.string()),
        }
    )


def _prediction_ids(job_id: str, row0: int, n: int, as_of: datetime) -> pa.Array:
    """Deterministic per (job, row), so a redelivered job gives every row the id it had:
    12 hex of the job's time (the log's id format), 8 of the job id's hash, 12 of the row
    number."""
    prefix = (
        f"{int(as_of.timestamp() * 1000):012x}{hashlib.sha256(job_id.encode()).hexdigest()[:8]}"
    )
    return pa.array([f"{prefix}{row:012x}" for row in range(row0, row0 + n)], pa.string())


def _pandas_dtype(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type):
        return "float64"
    return "str"

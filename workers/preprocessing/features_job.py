"""The build_features job: prepare the event log, build the features of each customer
partition (one task each when ``partitions`` > 1, finished by the fan-in helper), stitch
the parts into one registered dataset with lineage.

Partition files are scratch objects in the artifact store (content-addressed, so a
redelivered part writes the same bytes); the finalize step deletes them once the stitched
dataset is registered.
"""

from __future__ import annotations

import io
import zlib
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from api_client.contract import ErrorCode
from api_client.feature_params import BuildFeaturesParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.fanin import FanInRepository
from storage.jobs import JobRepository
from storage.models import Dataset
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.jobs.registry import Waiting
from workers.preprocessing.features.build import Built, build_partition
from workers.preprocessing.features.calendar import check_country
from workers.preprocessing.features.events import EventLogError, PreparedLog, prepare_events
from workers.preprocessing.features.spec import (
    CUSTOMER,
    FeatureSpec,
    cutoff_times,
    feature_spec,
)
from workers.preprocessing.ingest_job import dataset_summary
from workers.preprocessing.loading import DatasetFacts, dataset_facts
from workers.runtime import Runtime

PART_TASK = "cipml.preprocessing.build_features_part"
FINALIZE_TASK = "cipml.preprocessing.build_features_finalize"
PARQUET = "application/vnd.apache.parquet"


# ---------------------------------------------------------------- step 1: prepare, split


def run_build_features(ctx: JobContext, params: BuildFeaturesParams) -> dict[str, Any] | Waiting:
    facts = dataset_facts(ctx, params.dataset_id)
    name = params.name or f"{facts.name}.features"
    with ctx.session() as session:
        done = DatasetRepository(session).by_job(ctx.job_id, name)
        if done is not None:
            artifact = ArtifactRepository(session).get(done.stored_sha256)
            return _summary(done, artifact.uri if artifact else None, deduplicated=True)
    if params.holidays_country is not None:
        try:
            check_country(params.holidays_country)
        except ValueError as exc:
            raise JobError(ErrorCode.UNKNOWN_HOLIDAY_COUNTRY, str(exc)) from None
    ctx.progress("load", 0, 1, f"features: load {facts.name} v{facts.version}", force=True)
    log = _prepare(ctx, facts, params)
    cutoffs = cutoff_times(params.cutoffs) if params.cutoffs is not None else []
    spec = feature_spec(params, log.category_values)
    partitions = min(params.partitions, max(1, log.events[CUSTOMER].n_unique()))
    context = {
        "cutoffs": [c.isoformat() for c in cutoffs],
        "data_end": log.data_end.isoformat(),
        "category_values": {k: list(v) for k, v in log.category_values.items()},
        "log": _log_counts(log),
    }
    if partitions == 1:
        built = _build(log.events, params, spec, cutoffs, log)
        return _register(ctx, facts, name, params, built.table, [built.counts], context)
    # A mistake every partition would make is caught here, on one customer, before fan-out.
    first = log.events.filter(pl.col(CUSTOMER) == log.events[CUSTOMER][0])
    _build(first, params, spec, cutoffs, log)
    return _fan_out(ctx, log, partitions, name, context)


def _build(
    events: pl.DataFrame,
    params: BuildFeaturesParams,
    spec: FeatureSpec,
    cutoffs: list[datetime],
    log: PreparedLog,
) -> Built:
    try:
        return build_partition(events, params, spec, cutoffs, log.data_end)
    except EventLogError as exc:
        raise JobError(exc.code, str(exc)) from None


def _prepare(ctx: JobContext, facts: DatasetFacts, params: BuildFeaturesParams) -> PreparedLog:
    with ctx.runtime.store.open_verified(facts.sha256) as handle:
        frame = pl.read_parquet(handle)
    if frame.height == 0:
        raise JobError(ErrorCode.DATASET_EMPTY, f"dataset {facts.id} has no rows")
    label = params.label
    extra_values = [label.column] if label is not None and label.kind == "future_sum" else []
    extra_categories = (
        [label.column] if label is not None and label.kind == "next_event_type" else []
    )
    try:
        log = prepare_events(
            frame,
            params.customer_id_column,
            params.timestamp_column,
            list(dict.fromkeys([*params.value_columns, *extra_values])),
            list(dict.fromkeys([*params.category_columns, *extra_categories])),
        )
    except EventLogError as exc:
        raise JobError(exc.code, str(exc)) from None
    if log.events.height == 0:
        raise JobError(
            ErrorCode.NO_ROWS,
            f"none of the {log.rows_in:,} rows has both a {params.customer_id_column!r} and a "
            f"{params.timestamp_column!r}",
        )
    return log


def _log_counts(log: PreparedLog) -> dict[str, Any]:
    return {
        "rows_in": log.rows_in,
        "rows_without_key": log.rows_without_key,
        "events_after_merge": log.events.height,
        "customers": log.events[CUSTOMER].n_unique(),
        "all_missing_value_columns": log.all_missing_value_columns,
    }


def partition_of(customers: pl.Series, partitions: int) -> np.ndarray:
    """A stable partition per customer id (crc32: the same in every process and release)."""
    return np.fromiter(
        (zlib.crc32(str(c).encode()) % partitions for c in customers),
        dtype=np.int64,
        count=len(customers),
    )


def _fan_out(
    ctx: JobContext, log: PreparedLog, partitions: int, name: str, context: dict[str, Any]
) -> Waiting:
    customers = log.events[CUSTOMER].unique().sort()
    assignment = pl.DataFrame({CUSTOMER: customers, "part": partition_of(customers, partitions)})
    tagged = log.events.join(assignment, on=CUSTOMER, how="left")
    inputs = []
    for part in range(partitions):
        piece = tagged.filter(pl.col("part") == part).drop("part")
        inputs.append(ctx.runtime.store.put_bytes(_parquet_bytes(piece, ctx.job_id)).sha256)
    group_id = ctx.job_id
    with ctx.session() as session:
        FanInRepository(session).open(
            group_id,
            expected=partitions,
            follow_up_task=FINALIZE_TASK,
            follow_up_queue="preprocessing",
            follow_up_payload={"job_id": ctx.job_id, "name": name, "context": context},
            job_id=ctx.job_id,
        )
    for part, sha256 in enumerate(inputs):
        payload = {"job_id": ctx.job_id, "group_id": group_id, "part": part, "input": sha256}
        ctx.send_after_commit(
            PART_TASK,
            {**payload, "context": context},
            queue="preprocessing",
            task_id=f"{group_id}-features-{part}",
        )
    line = f"features: {partitions} partitions of {context['log']['customers']:,} customers"
    ctx.progress("partitions", 0, partitions, line, force=True)
    return Waiting(line)


# ---------------------------------------------------------------- step 2: one partition


def run_part(runtime: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    """Build one partition's features; returns the part result the fan-in records."""
    params = _job_params(runtime, payload["job_id"])
    context = payload["context"]
    events = pl.read_parquet(io.BytesIO(runtime.store.read_bytes(payload["input"])))
    spec = feature_spec(params, {k: tuple(v) for k, v in context["category_values"].items()})
    built = build_partition(
        events,
        params,
        spec,
        [datetime.fromisoformat(c) for c in context["cutoffs"]],
        datetime.fromisoformat(context["data_end"]),
    )
    output = runtime.store.put_bytes(_parquet_bytes(built.table, payload["job_id"]))
    return {
        "part": payload["part"],
        "input": payload["input"],
        "output": output.sha256,
        "counts": built.counts,
    }


def _job_params(runtime: Runtime, job_id: str) -> BuildFeaturesParams:
    with transaction(runtime.sessions) as session:
        job = JobRepository(session).require(job_id)
        return BuildFeaturesParams.model_validate(job.params)


# ---------------------------------------------------------------- step 3: stitch, register


def finalize(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    params = BuildFeaturesParams.model_validate(_job_row_params(ctx))
    facts = dataset_facts(ctx, params.dataset_id)
    with ctx.session() as session:
        parts = [dict(p.result or {}) for p in FanInRepository(session).parts(ctx.job_id)]
    parts.sort(key=lambda r: int(r["part"]))
    store = ctx.runtime.store
    tables = [pl.read_parquet(io.BytesIO(store.read_bytes(p["output"]))) for p in parts]
    if params.granularity == "cutoff":
        order = ["cutoff", params.customer_id_column]
    else:
        order = [params.customer_id_column, params.timestamp_column]
    table = pl.concat(tables, how="vertical").sort(order)
    counts = [p["counts"] for p in parts]
    summary = _register(ctx, facts, payload["name"], params, table, counts, payload["context"])
    for part in parts:  # scratch: unique to this job (its id is in the Parquet metadata)
        for key in ("input", "output"):
            store.delete(part[key])
    return summary


def _job_row_params(ctx: JobContext) -> dict[str, Any]:
    with ctx.session() as session:
        return dict(JobRepository(session).require(ctx.job_id).params)


def _register(
    ctx: JobContext,
    facts: DatasetFacts,
    name: str,
    params: BuildFeaturesParams,
    table: pl.DataFrame,
    part_counts: list[dict[str, int]],
    context: dict[str, Any],
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for part in part_counts:
        for key, value in part.items():
            counts[key] = counts.get(key, 0) + int(value)
    if table.height == 0:
        raise JobError(
            ErrorCode.NO_ROWS,
            "no (customer, cutoff) row to write: " + _why_empty(counts, context),
        )
    ctx.progress("store", 0, 1, f"features: store {table.height:,} rows", force=True)
    stored = ctx.runtime.store.put_bytes(_parquet_bytes(table))
    label = params.label.name if params.label is not None else None
    keys = {params.customer_id_column, params.timestamp_column, "cutoff", label}
    lineage = {
        "parent_dataset_id": facts.id,
        "parent_sha256": facts.sha256,
        "granularity": params.granularity,
        "cutoffs": context["cutoffs"],
        "data_end": context["data_end"],
        "log": context["log"],
        "counts": counts,
        "partitions": len(part_counts),
        "feature_columns": [c for c in table.columns if c not in keys],
        "label": _label_summary(table, params),
        "example": _example(table),
        "libraries": {"polars": pl.__version__},
    }
    with ctx.session() as session:
        ArtifactRepository(session).record(stored, media_type=PARQUET)
        dataset, created = DatasetRepository(session).register(
            Dataset(
                name=name,
                stored_sha256=stored.sha256,
                rows=table.height,
                columns=table.width,
                schema=[{"name": n, "dtype": str(t)} for n, t in table.schema.items()],
                source_uri=f"dataset:{facts.id}",
                created_by_job=ctx.job_id,
                parent_id=facts.id,
                lineage=lineage,
            )
        )
        session.flush()
        summary = _summary(dataset, stored.uri, deduplicated=not created)
    ctx.progress("done", 1, 1, f"features: {name} v{summary['version']}", force=True)
    return summary


def _label_summary(table: pl.DataFrame, params: BuildFeaturesParams) -> dict[str, Any] | None:
    label = params.label
    if label is None:
        return None
    column = table[label.name]
    # The horizon lets a time-ordered validation keep a gap at least this long.
    if label.kind == "next_event_type":
        shares = column.value_counts(normalize=True).sort(label.name)
        return {
            "name": label.name,
            "kind": label.kind,
            "horizon": label.horizon,
            "shares": dict(shares.iter_rows()),
        }
    mean = column.cast(pl.Float64).mean()
    return {"name": label.name, "kind": label.kind, "horizon": label.horizon, "mean": mean}


def _example(table: pl.DataFrame) -> dict[str, Any]:
    """One row, JSON-safe, to show what a feature row looks like: the most frequent
    customer's (where there is a frequency), else the first."""
    if "frequency" in table.columns:
        table = table.sort("frequency", table.columns[0], descending=[True, False])
    row = table.head(1).to_dicts()[0]
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in row.items()
        if not (isinstance(v, float) and v != v)  # NaN is not JSON
    }


def _why_empty(counts: dict[str, int], context: dict[str, Any]) -> str:
    excluded = counts.get("excluded_horizon_past_data", 0)
    if excluded:
        return (
            f"all {excluded:,} were excluded because the label horizon runs past the end of "
            f"the data ({context['data_end']}); choose earlier cutoffs or a shorter horizon"
        )
    return (
        f"no customer has an event before any cutoff ({', '.join(context['cutoffs'][:3])}); "
        f"the data ends {context['data_end']}"
    )


def _summary(dataset: Dataset, uri: str | None, **extra: Any) -> dict[str, Any]:
    lineage = dataset.lineage or {}
    return dataset_summary(
        dataset,
        uri,
        parent_dataset_id=dataset.parent_id,
        features=len(lineage.get("feature_columns", [])),
        label=lineage.get("label"),
        example=lineage.get("example", {}),
        counts=lineage.get("counts", {}),
        log=lineage.get("log", {}),
        **extra,
    )


def _parquet_bytes(table: pl.DataFrame, scratch_of_job: str | None = None) -> bytes:
    """Parquet bytes; scratch files carry their job id so that two jobs never share (and
    delete) one content-addressed object. No dictionary encoding: feature values rarely
    repeat, and encoding them was half the write time (benchmarks/feature_job.py)."""
    buffer = io.BytesIO()
    if scratch_of_job is None:
        # One chunk: polars lays row groups out by chunk, and a table stitched from parts
        # must give the same bytes as one built at once.
        table.rechunk().write_parquet(buffer)
        return buffer.getvalue()
    arrow = table.to_arrow().replace_schema_metadata({"cipml_scratch_job": scratch_of_job})
    pq.write_table(arrow, buffer, use_dictionary=False)
    return buffer.getvalue()

"""The whole ``build_features`` job through a real worker, next to the feature engine alone:
how much the service adds around the engine (queueing, Parquet I/O, hashing, the database).

Generates, with a fixed seed, a raw event log of ``--events`` rows over ``--customers``
customers (default 1,000,000 / 20,000): the events of ``benchmarks.feature_engine`` (same
draws, so the same prepared frame; checked) plus a text column ``channel`` (web / store / app,
50 / 30 / 20 %), in time order, columns ``customer_id`` (text), ``ts`` (timestamp), ``amount``
(float) and ``channel``; writes it as Parquet into a data root. Then, on Redis and a fresh
PostgreSQL database ``cipml_bench_<pid>`` (``cipml db upgrade`` first), it starts
``cipml worker -c 2`` and

* warms the worker up: every job below once on a 2,000-event log (untimed);
* ingests the file (``ingest_dataset``, one run, timed apart);
* times ``build_features`` jobs from before ``client.submit(...)`` to the published result
  (one Redis pattern subscription, timestamped on arrival; ``JobHandle.result()`` polls up to
  every 100 ms), ``--repeats`` new jobs each, median:

  - **per event**: value ``amount``, lags 1/7/30, windows 7D/14D/30D/90D, calendar
    (``benchmarks.feature_engine``'s features), ``partitions`` 1 and 2;
  - **per cutoff**: 12 monthly cutoffs (the last ones whose 8-week horizon fits in the data),
    the same windows and lags, ``category_columns: ["channel"]``, calendar with holidays
    ``US``, a churn label with horizon ``8W``, ``partitions`` 1 and 2;

* after each job, runs the engine alone in this process on the same input, step by step as
  the job does it: read the stored dataset (sha256 check + ``pl.read_parquet``),
  ``prepare_events``, ``build_partition``, serialise the table to Parquet, put it into an
  artifact store (a scratch one). *Engine* = ``prepare_events`` + ``build_partition``;
  *service overhead* = job seconds - engine seconds.

Per job it reports the job row's ``wall_s``, ``cpu_s`` and ``peak_rss_bytes``
(``client.job(id)``), the timeline from the jobs row, its events and (partitions > 1) its
fan-in group, and the CPU every process used (worker tree, Redis, PostgreSQL). The engine runs
are measured with the job's own ``ResourceMeter``. Sanity: every job of one granularity, 1 or
2 partitions, and the engine give the same bytes.

It cleans up after itself, on error and on Ctrl-C too: the worker's process group is stopped,
the database dropped and the Redis db flushed. Run from the repository root::

    .venv/bin/python -m benchmarks.feature_job [--events 1000000] [--customers 20000] \\
        [--repeats 3] [--output FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import celery
import numpy as np
import pandas as pd
import polars as pl
import psycopg
import redis
from polars.testing import assert_frame_equal
from sqlalchemy.engine import URL, make_url

from api_client import Client
from api_client.feature_params import BuildFeaturesParams, duration_days
from benchmarks.feature_engine import SPAN_SECONDS, SPEC, START, prepared_log
from benchmarks.job_overhead import (
    BenchmarkError,
    CpuMeter,
    ResultWatcher,
    WorkerProcess,
    _conninfo,
    flushed_redis_dbs,
    scratch_database,
    start_worker,
)
from benchmarks.machine import describe_machine, load_average, package_versions, report_header
from storage.artifact_store import ArtifactStore
from workers.jobs.resources import ResourceMeter
from workers.preprocessing.features.build import build_partition
from workers.preprocessing.features.events import prepare_events
from workers.preprocessing.features.spec import CUSTOMER, N_EVENTS, TS, cutoff_times, feature_spec
from workers.preprocessing.features_job import _parquet_bytes

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = ("web", "store", "app")
CHANNEL_SHARES = (0.5, 0.3, 0.2)
LAGS = list(SPEC.lag_periods)
WINDOWS = [name for name, _ in SPEC.windows]
CUTOFFS = 12
HORIZON = "8W"
WARMUP_EVENTS, WARMUP_CUSTOMERS = 2_000, 50
WORKER_NAME = "bench-features@%h"
MIB = 1024 * 1024


# ---------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    events: int
    customers: int
    repeats: int
    seed: int
    concurrency: int
    redis_url: str
    redis_db: int
    postgres_url: str
    timeout: float
    output: Path | None
    keep_logs: bool

    @property
    def broker(self) -> str:
        return f"{self.redis_url.rstrip('/')}/{self.redis_db}"


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.feature_job",
        description="build_features through a real worker vs the feature engine alone.",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="raw event rows")
    parser.add_argument("--customers", type=int, default=20_000, help="customers")
    parser.add_argument("--repeats", type=int, default=3, help="jobs per variant (default 3)")
    parser.add_argument("--seed", type=int, default=20261126, help="generator seed")
    parser.add_argument(
        "--concurrency", type=int, default=2, help="worker pool processes (default 2)"
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379",
        help="Redis server, without db number (default redis://127.0.0.1:6379)",
    )
    parser.add_argument(
        "--redis-db", type=int, default=13, help="Redis db for the worker; flushed (default 13)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for one job (default 900)"
    )
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the temporary folder with the worker log"
    )
    args = parser.parse_args(argv)
    if args.events < 100 or args.customers < 2 or args.repeats < 1 or args.concurrency < 1:
        parser.error("--events must be >= 100, --customers >= 2, --repeats and --concurrency >= 1")
    return Options(
        events=args.events,
        customers=args.customers,
        repeats=args.repeats,
        seed=args.seed,
        concurrency=args.concurrency,
        redis_url=args.redis_url,
        redis_db=args.redis_db,
        postgres_url=args.postgres_url,
        timeout=args.timeout,
        output=args.output,
        keep_logs=args.keep_logs,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- the log


def raw_log(events: int, customers: int, seed: int) -> pl.DataFrame:
    """The raw rows behind ``feature_engine.prepared_log`` (the same draws in the same order),
    plus a ``channel`` drawn after them, sorted by time as an export would be."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.0, size=customers)
    customer = rng.choice(customers, size=events, p=weights / weights.sum())
    start_us = int(pd.Timestamp(START).value // 1000)
    ts = start_us + rng.integers(0, SPAN_SECONDS, size=events) * 1_000_000
    amount = rng.lognormal(3.0, 1.0, events)
    channel = rng.choice(len(CHANNELS), size=events, p=CHANNEL_SHARES)
    width = len(str(customers - 1))
    raw = pl.DataFrame(
        {
            "code": customer.astype(np.int64),
            TS: ts,
            "amount": amount,
            "channel": np.asarray(CHANNELS)[channel],
        }
    )
    return raw.sort(TS, "code").select(
        (pl.lit("C") + pl.col("code").cast(pl.String).str.zfill(width)).alias(CUSTOMER),
        pl.col(TS).cast(pl.Datetime("us")),
        "amount",
        pl.col("channel").cast(pl.String),
    )


def same_events_as_feature_engine(raw: pl.DataFrame, customers: int, seed: int) -> bool:
    """Whether the raw log prepares to ``feature_engine``'s prepared frame."""
    ours = prepare_events(raw, CUSTOMER, TS, ["amount"], []).events
    theirs = prepared_log(raw.height, customers, seed)
    try:
        assert_frame_equal(
            ours.select(CUSTOMER, TS, N_EVENTS, "amount"),
            theirs.select(CUSTOMER, TS, N_EVENTS, "amount"),
            check_exact=False,
            rel_tol=1e-12,
        )
    except AssertionError:
        return False
    return True


# ---------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    granularity: str  # "event" or "cutoff"
    partitions: int

    @property
    def label(self) -> str:
        return "per event" if self.granularity == "event" else "per cutoff"

    def params(self, dataset_id: int, data_end: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {
            "dataset_id": dataset_id,
            "name": f"bench.{self.granularity}.p{self.partitions}",
            "customer_id_column": CUSTOMER,
            "timestamp_column": TS,
            "value_columns": ["amount"],
            "granularity": self.granularity,
            "lag_periods": LAGS,
            "rolling_windows": WINDOWS,
            "calendar": True,
            "partitions": self.partitions,
        }
        if self.granularity == "cutoff":
            params |= {
                "cutoffs": monthly_schedule(data_end),
                "category_columns": ["channel"],
                "holidays_country": "US",
                "label": {"kind": "churn", "horizon": HORIZON},
            }
        BuildFeaturesParams.model_validate(params)
        return params


VARIANTS = (Variant("event", 1), Variant("event", 2), Variant("cutoff", 1), Variant("cutoff", 2))


def monthly_schedule(data_end: datetime) -> dict[str, str]:
    """``CUTOFFS`` first-of-month cutoffs, the last one the latest whose label horizon ends
    inside the data (so no row is excluded for running past it)."""
    latest = data_end - timedelta(days=duration_days(HORIZON))
    last = pd.Timestamp(latest.year, latest.month, 1)
    first = last - pd.DateOffset(months=CUTOFFS - 1)
    return {"every": "month", "from": first.isoformat(), "to": last.isoformat()}


# ---------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class JobRun:
    job_id: str
    seconds: float  # before submit() -> result published and seen
    result: dict[str, Any]
    wall_s: float | None
    cpu_s: float | None
    peak_rss_bytes: int | None
    timeline: dict[str, float]
    cpu: dict[str, float]  # per process group, over the job (CpuMeter)


@dataclass(frozen=True)
class EngineRun:
    steps: dict[str, float]  # read, prepare, build, serialise, store (seconds)
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    rows: int
    columns: int
    sha256: str

    @property
    def engine_s(self) -> float:
        return self.steps["prepare"] + self.steps["build"]


@dataclass
class Service:
    """What a job needs: the client, the result watcher, the worker and its database."""

    client: Client
    watcher: ResultWatcher
    worker: WorkerProcess
    database: URL
    timeout: float

    def check_worker(self) -> None:
        if not self.worker.alive():
            raise BenchmarkError(f"the worker exited with code {self.worker.proc.returncode}")


def run_job(service: Service, job_type: str, params: dict[str, Any]) -> JobRun:
    meter = CpuMeter(service.worker, str(service.database.database))
    meter.start()
    t0 = time.time()
    handle = service.client.submit(job_type, params)
    arrival = service.watcher.wait(handle.id, service.timeout)
    seconds = arrival.at - t0
    cpu = meter.stop()
    outcome = arrival.result if isinstance(arrival.result, dict) else {}
    if outcome.get("status") != "SUCCEEDED":
        raise BenchmarkError(f"{job_type} job {handle.id} ended {outcome}")
    result = handle.result(timeout=30)
    info = service.client.job(handle.id)
    return JobRun(
        job_id=handle.id,
        seconds=seconds,
        result=result,
        wall_s=info.wall_s,
        cpu_s=info.cpu_s,
        peak_rss_bytes=info.peak_rss_bytes,
        timeline=job_timeline(service.database, handle.id, t0, arrival.at),
        cpu=cpu,
    )


def job_timeline(database: URL, job_id: str, t0: float, seen: float) -> dict[str, float]:
    """Seconds of each stretch of a job, from its row, its events and its fan-in group."""
    with psycopg.connect(_conninfo(database)) as conn:
        row = conn.execute(
            "SELECT started_at, finished_at FROM jobs WHERE id = %s", (job_id,)
        ).fetchone()
        events = conn.execute(
            "SELECT kind, at FROM job_events WHERE job_id = %s ORDER BY id", (job_id,)
        ).fetchall()
        group = conn.execute(
            "SELECT ready_at FROM fan_in_groups WHERE job_id = %s", (job_id,)
        ).fetchone()
    if row is None or row[0] is None or row[1] is None:
        raise BenchmarkError(f"job {job_id} has no start or end time")
    started, finished = row[0].timestamp(), row[1].timestamp()
    timeline = {
        "submit → running": started - t0,
        "running → done": finished - started,
        "done → result seen": seen - finished,
    }
    at = {kind: moment.timestamp() for kind, moment in events}
    if group is not None and group[0] is not None and "waiting" in at:
        ready = group[0].timestamp()
        follow_up = at.get("follow_up_started", ready)
        timeline |= {
            "step 1 (prepare, split)": at["waiting"] - started,
            "parts": ready - at["waiting"],
            "finalize queued": follow_up - ready,
            "finalize (stitch, store)": finished - follow_up,
        }
    return timeline


def run_engine(
    store: ArtifactStore, scratch: ArtifactStore, dataset_sha256: str, raw: dict[str, Any]
) -> EngineRun:
    """The job's work in this process, as ``features_job`` does it with one partition."""
    params = BuildFeaturesParams.model_validate(raw)
    gc.collect()
    steps: dict[str, float] = {}
    with ResourceMeter() as meter:
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            steps[name] = now - clock
            clock = now

        with store.open_verified(dataset_sha256) as handle:
            frame = pl.read_parquet(handle)
        lap("read")
        prepared = prepare_events(
            frame,
            params.customer_id_column,
            params.timestamp_column,
            list(dict.fromkeys(params.value_columns)),
            list(dict.fromkeys(params.category_columns)),
        )
        del frame
        cutoffs = cutoff_times(params.cutoffs) if params.cutoffs is not None else []
        spec = feature_spec(params, prepared.category_values)
        lap("prepare")
        built = build_partition(prepared.events, params, spec, cutoffs, prepared.data_end)
        lap("build")
        data = _parquet_bytes(built.table)
        lap("serialise")
        stored = scratch.put_bytes(data)
        lap("store")
        rows, columns = built.table.height, built.table.width
        del prepared, built, data
    assert meter.usage is not None
    gc.collect()
    return EngineRun(
        steps=steps,
        wall_s=meter.usage.wall_s,
        cpu_s=meter.usage.cpu_s,
        peak_rss_bytes=meter.usage.peak_rss_bytes,
        rows=rows,
        columns=columns,
        sha256=stored.sha256,
    )


@dataclass
class Measured:
    variant: Variant
    jobs: list[JobRun] = field(default_factory=list)
    engines: list[EngineRun] = field(default_factory=list)


# ---------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _job_median(runs: Sequence[JobRun], get: Callable[[JobRun], float | None]) -> float:
    return median([v for v in (get(r) for r in runs) if v is not None])


def _engine_median(runs: Sequence[EngineRun], get: Callable[[EngineRun], float]) -> float:
    return median([get(r) for r in runs])


def _timeline_median(runs: Sequence[JobRun], key: str) -> float:
    return median([r.timeline[key] for r in runs if key in r.timeline])


def _step_median(runs: Sequence[EngineRun], key: str) -> float:
    return median([r.steps[key] for r in runs])


def _cpu_group(run: JobRun, prefix: str) -> float:
    return sum(v for k, v in run.cpu.items() if k.startswith(prefix))


# ---------------------------------------------------------------------- report


def machine_info(options: Options) -> dict[str, str]:
    redis_version = redis.Redis.from_url(options.broker).info("server")["redis_version"]
    with psycopg.connect(_conninfo(make_url(options.postgres_url))) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    versions = {
        **package_versions(("polars", "pyarrow", "numpy")),
        "celery": celery.__version__,
        "redis server": str(redis_version),
        "postgresql": str(row[0]) if row else "?",
    }
    return describe_machine(ROOT, versions, diff_digest=False)


@dataclass(frozen=True)
class Prepared:
    """Facts about the input, for the report."""

    generated_s: float
    parquet_bytes: int
    same_as_feature_engine: bool
    ingest: JobRun
    layout: str
    schedule: dict[str, str]


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:,.0f}"


def build_report(
    options: Options,
    machine: Mapping[str, str],
    started: datetime,
    loads: tuple[str, str],
    prepared: Prepared,
    measured: Sequence[Measured],
    worker_log: str,
) -> tuple[str, bool]:
    stat = f"median of {options.repeats}" if options.repeats > 1 else "one run"
    command = shlex.join(["python", "-m", "benchmarks.feature_job", *sys.argv[1:]])
    ingest = prepared.ingest
    ingested = ingest.result
    schedule = f"{prepared.schedule['from'][:10]} to {prepared.schedule['to'][:10]}"
    out = [
        *report_header(started, command, machine, *loads),
        "",
        (
            f"Log: {options.events:,} raw rows (`customer_id` text, `ts` timestamp, `amount` "
            f"float, `channel` text: {'/'.join(CHANNELS)}), {options.customers:,} customers, "
            f"seed {options.seed}, in time order; {prepared.parquet_bytes / MIB:,.1f} MiB of "
            f"Parquet (zstd) in the data root, generated in {prepared.generated_s:.1f} s. "
            + (
                "It prepares to the same events as `benchmarks.feature_engine`'s log."
                if prepared.same_as_feature_engine
                else "**It does not prepare to `benchmarks.feature_engine`'s events.**"
            )
        ),
        "",
        f"Worker: `cipml worker -c {options.concurrency}` on Redis db {options.redis_db} and a "
        f"fresh PostgreSQL database; processes: {prepared.layout}.",
        "",
        (
            f"Ingest (`ingest_dataset`, one run): {ingest.seconds:.2f} s submit → result, "
            f"job wall_s {_f(ingest.wall_s)} s, cpu_s {_f(ingest.cpu_s)} s, peak RSS "
            f"{_mib(ingest.peak_rss_bytes)} MiB; {ingested.get('rows', 0):,} rows, "
            f"{ingested.get('columns', '?')} columns."
        ),
        "",
        (
            f"Jobs: per event = value `amount`, lags {'/'.join(map(str, LAGS))}, windows "
            f"{'/'.join(WINDOWS)}, calendar; per cutoff = the same at {CUTOFFS} monthly cutoffs "
            f'({schedule}), `category_columns: ["channel"]`, calendar with US holidays, '
            f"churn label `{HORIZON}`. Each job submitted after the last one ended; after each, "
            "the engine alone in this process on the same stored dataset. Before the ingest, "
            f"an untimed warm-up: every job once on a {WARMUP_EVENTS:,}-event log."
        ),
        "",
        (
            f"| job | partitions | rows × columns | job s ({stat}) | first job s | engine s "
            "(prepare + build) | service overhead s | overhead / job | job wall_s | job cpu_s "
            "| job peak RSS (MiB) | engine peak RSS (MiB) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        job_s = _job_median(m.jobs, lambda r: r.seconds)
        engine_s = _engine_median(m.engines, lambda r: r.engine_s)
        peak = _job_median(m.jobs, lambda r: r.peak_rss_bytes)
        engine_peak = _engine_median(m.engines, lambda r: r.peak_rss_bytes)
        rows = m.jobs[0].result.get("rows", 0)
        columns = m.jobs[0].result.get("columns", 0)
        out.append(
            f"| {m.variant.label} | {m.variant.partitions} | {rows:,} × {columns} "
            f"| {job_s:.2f} | {m.jobs[0].seconds:.2f} | {engine_s:.2f} "
            f"| **{job_s - engine_s:+.2f}** | {(job_s - engine_s) / job_s:.0%} "
            f"| {_f(_job_median(m.jobs, lambda r: r.wall_s))} "
            f"| {_f(_job_median(m.jobs, lambda r: r.cpu_s))} "
            f"| {_mib(peak)} | {_mib(engine_peak)} |"
        )
    out += [
        "",
        (
            "Job s: before `client.submit()` until the job's result was published (seen by a "
            "Redis subscriber). Engine s: `prepare_events` + `build_partition` in this "
            "process on the stored dataset, one partition, timed like the job "
            "(`workers.jobs.resources.ResourceMeter`: peak = VmHWM reset at the start). "
            "wall_s, cpu_s, peak RSS: the job row (`client.job(id)`): the job's own steps in "
            "the pool process; with 2 partitions the first step and the finalize step only, "
            "**not** the partition tasks."
        ),
        "",
        f"Where the job's time goes ({stat}; seconds):",
        "",
        (
            "| job | partitions | submit → running | running → done | done → result seen "
            "| in-process: read (sha256 + Parquet) | prepare_events | build_partition "
            "| serialise Parquet | store put | running → done - in-process steps |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        t = {k: _timeline_median(m.jobs, k) for k in m.jobs[0].timeline}
        s = {k: _step_median(m.engines, k) for k in m.engines[0].steps}
        rest = t["running → done"] - sum(s.values())
        out.append(
            f"| {m.variant.label} | {m.variant.partitions} | {t['submit → running']:.3f} "
            f"| {t['running → done']:.2f} | {t['done → result seen']:.3f} | {s['read']:.2f} "
            f"| {s['prepare']:.2f} | {s['build']:.2f} | {s['serialise']:.2f} "
            f"| {s['store']:.2f} | {rest:+.2f} |"
        )
    split = [m for m in measured if m.variant.partitions > 1]
    if split:
        out += [
            "",
            "With partitions, running → done (seconds):",
            "",
            "| job | partitions | step 1 (prepare, split, fan out) | parts (send → last done) "
            "| finalize queued | finalize (read parts, concat, sort, store, register) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        keys = (
            "step 1 (prepare, split)",
            "parts",
            "finalize queued",
            "finalize (stitch, store)",
        )
        for m in split:
            cells = " | ".join(
                _f(_timeline_median(m.jobs, k), 3 if i == 2 else 2) for i, k in enumerate(keys)
            )
            out.append(f"| {m.variant.label} | {m.variant.partitions} | {cells} |")
    out += [
        "",
        f"CPU seconds during the job (every process, {stat}), next to the engine alone:",
        "",
        "| job | partitions | worker pool | worker main + control worker | Redis | PostgreSQL "
        "| all | engine alone (prepare … store) | engine alone, prepare + build share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        pool = _job_median(m.jobs, lambda r: _cpu_group(r, "worker: pool"))
        other = _job_median(
            m.jobs, lambda r: _cpu_group(r, "worker") - _cpu_group(r, "worker: pool")
        )
        red = _job_median(m.jobs, lambda r: _cpu_group(r, "redis"))
        pg = _job_median(m.jobs, lambda r: _cpu_group(r, "postgres"))
        total = _job_median(
            m.jobs, lambda r: sum(v for k, v in r.cpu.items() if not k.startswith("client"))
        )
        engine_cpu = _engine_median(m.engines, lambda r: r.cpu_s)
        share = _engine_median(m.engines, lambda r: r.engine_s / r.wall_s)
        out.append(
            f"| {m.variant.label} | {m.variant.partitions} | {pool:.2f} | {other:.2f} "
            f"| {red:.2f} | {pg:.2f} | {total:.2f} | {engine_cpu:.2f} | {share:.0%} of its wall |"
        )
    out += [
        "",
        "Every run (seconds):",
        "",
        "| job | partitions | jobs | engines |",
        "|---|---:|---|---|",
    ]
    for m in measured:
        jobs = ", ".join(f"{r.seconds:.2f}" for r in m.jobs)
        engines = ", ".join(f"{r.engine_s:.2f}" for r in m.engines)
        out.append(f"| {m.variant.label} | {m.variant.partitions} | {jobs} | {engines} |")
    agree = sanity(measured)
    out += [
        "",
        "* Sanity: "
        + "; ".join(
            f"{label}: {'same bytes' if ok else '**DIFFERENT BYTES**'} ({detail})"
            for label, (ok, detail) in agree.items()
        )
        + ".",
        f"* Worker log: {worker_log}.",
    ]
    return "\n".join(out) + "\n", all(ok for ok, _ in agree.values())


def sanity(measured: Sequence[Measured]) -> dict[str, tuple[bool, str]]:
    """Per granularity: every job (1 or 2 partitions) and every engine run wrote one table."""
    found: dict[str, tuple[bool, str]] = {}
    for granularity in ("event", "cutoff"):
        group = [m for m in measured if m.variant.granularity == granularity]
        if not group:
            continue
        hashes = {str(r.result.get("sha256")) for m in group for r in m.jobs}
        hashes |= {r.sha256 for m in group for r in m.engines}
        runs = sum(len(m.jobs) + len(m.engines) for m in group)
        found[group[0].variant.label] = (
            len(hashes) == 1,
            f"{runs} jobs and engine runs, {len(hashes)} distinct sha256",
        )
    return found


# ---------------------------------------------------------------------- main


def _interrupt(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _write_log(frame: pl.DataFrame, path: Path) -> int:
    frame.write_parquet(path)
    return path.stat().st_size


def _worker_log_summary(worker: WorkerProcess) -> str:
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in worker.log_path.read_text(errors="replace").splitlines():
            for level in ("WARNING", "ERROR", "CRITICAL"):
                if level in line:
                    counts[level] = counts.get(level, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no warnings"


def run(options: Options) -> tuple[str, bool]:
    started = datetime.now(UTC)
    machine = machine_info(options)
    python = Path(sys.executable)
    cipml = str(python.parent / "cipml")
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="cipml_bench_features_"))
        if not options.keep_logs:
            stack.callback(_rmtree, tmp)
        data_root, home = tmp / "data", tmp / "home"
        data_root.mkdir()
        home.mkdir()

        log(f"generating {options.events:,} events of {options.customers:,} customers ...")
        clock = time.perf_counter()
        raw = raw_log(options.events, options.customers, options.seed)
        data_end = raw[TS].max()
        assert isinstance(data_end, datetime)
        parquet_bytes = _write_log(raw, data_root / "events.parquet")
        generated_s = time.perf_counter() - clock
        same = same_events_as_feature_engine(raw, options.customers, options.seed)
        small = raw_log(WARMUP_EVENTS, WARMUP_CUSTOMERS, options.seed + 1)
        _write_log(small, data_root / "warmup.parquet")
        small_end = small[TS].max()
        assert isinstance(small_end, datetime)
        del raw, small
        gc.collect()

        database = stack.enter_context(scratch_database(options.postgres_url))
        stack.enter_context(flushed_redis_dbs([options.broker]))
        env = {key: value for key, value in os.environ.items() if not key.startswith("CIPML_")}
        env |= {
            "CIPML_BROKER_URL": options.broker,
            "CIPML_DATABASE_URL": database.render_as_string(hide_password=False),
            "CIPML_HOME": str(home),
            "CIPML_ARTIFACT_ROOT": str(home / "artifacts"),
            "CIPML_DATA_ROOTS": str(data_root),
            "CIPML_LOG_LEVEL": "WARNING",
        }
        log(f"database {database.database}, files in {tmp}")
        upgrade = subprocess.run(
            [cipml, "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if upgrade.returncode != 0:
            raise BenchmarkError(f"cipml db upgrade failed:\n{upgrade.stderr}")
        worker = start_worker(
            "features",
            [cipml, "worker", "-c", str(options.concurrency), "-n", WORKER_NAME],
            env,
            ROOT,
            tmp / "worker.log",
        )
        stack.callback(worker.stop)
        watcher = ResultWatcher(options.broker)
        stack.callback(watcher.close)
        client = Client(options.broker, control_timeout=60)
        stack.callback(client.close)
        service = Service(client, watcher, worker, database, options.timeout)
        watcher.health_check = service.check_worker
        store = ArtifactStore(str(home / "artifacts"))
        scratch = ArtifactStore(str(tmp / "engine-store"))
        try:
            load_before = load_average()
            log("warm-up (the first job also waits for the worker to start)")
            warm = run_job(service, "ingest_dataset", {"uri": "warmup.parquet", "name": "warm"})
            warm_id, warm_sha = int(warm.result["dataset_id"]), str(warm.result["sha256"])
            for variant in VARIANTS:
                run_job(service, "build_features", variant.params(warm_id, small_end))
            run_engine(store, scratch, warm_sha, VARIANTS[-1].params(warm_id, small_end))
            layout = worker.layout()
            log("ingest")
            ingest = run_job(service, "ingest_dataset", {"uri": "events.parquet", "name": "bench"})
            dataset_id, dataset_sha = int(ingest.result["dataset_id"]), str(ingest.result["sha256"])
            measured = [Measured(v) for v in VARIANTS]
            for m in measured:
                params = m.variant.params(dataset_id, data_end)
                for repeat in range(options.repeats):
                    m.jobs.append(run_job(service, "build_features", params))
                    m.engines.append(run_engine(store, scratch, dataset_sha, params))
                    log(
                        f"  {m.variant.label}, {m.variant.partitions} partition(s), run "
                        f"{repeat + 1}: job {m.jobs[-1].seconds:.2f} s, engine "
                        f"{m.engines[-1].engine_s:.2f} s"
                    )
            load_after = load_average()
        except BenchmarkError as exc:
            raise BenchmarkError(f"{exc}\n--- worker log tail:\n{worker.log_tail()}") from None
        prepared = Prepared(
            generated_s, parquet_bytes, same, ingest, layout, monthly_schedule(data_end)
        )
        summary = _worker_log_summary(worker)
    text, agree = build_report(
        options, machine, started, (load_before, load_after), prepared, measured, summary
    )
    return text, agree and same


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        text, ok = run(options)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; worker stopped, database dropped", file=sys.stderr)
        return 130
    print(text)
    if options.output is not None:
        options.output.write_text(text)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())

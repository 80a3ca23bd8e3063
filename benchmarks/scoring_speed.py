"""Scoring speed: ``score_dataset`` against pandas + the same pipeline, and inline
``predict`` latency against a raw round trip on the same queue, in one run.

Setup (untimed): a fresh PostgreSQL database ``cipml_bench_<pid>`` and a Redis db number
(default 11, **flushed** at the start and the end), one ``cipml worker -c 2`` on them with
``OMP_NUM_THREADS=1`` (and the other BLAS caps) and ``CIPML_THREADS_PER_PROCESS=1``. The
bundled CDNOW log is ingested, the demo's churn features are built at one cutoff
(``workers.demo.churn_features_params``: 1997-10-01, 39-week label; 23,570 customers), a
churn model is trained with a short config (``--family``, random search, 2 trials, 3 folds,
no ensemble) and set as ``champion``. The feature table is repeated with ``customer_id``
made unique (``f"{id}-{k}"``) up to ``--rows`` rows, written as Parquet into the worker's
data root and registered with ``ingest_dataset`` (timed apart, reported only).

1. **Batch, by reference.** ours: ``client.score_dataset(model, dataset_id)`` from submit to
   the published result (reading the dataset's Parquet in chunks of
   ``CIPML_SCORE_CHUNK_ROWS``, validation, routing, scoring, every prediction logged to the
   Parquet prediction log, the output dataset written and registered), after an untimed
   warm-up job on the 23,570-row feature table. Baseline, in this process on one thread
   (``OMP_NUM_THREADS=1`` and threadpoolctl): read the artifact from the store and
   ``load_pipeline`` it, ``pd.read_parquet`` of the same Parquet (the key and the version's
   inputs: the columns ours reads), ``to_model_frame``, ``predict_proba``, and
   ``to_parquet`` of (customer_id, score). The baseline runs before and after ours; the
   faster of the two is the reference. Target: ours >= 0.67 x the baseline's rows/s.
   When it is missed (or with ``--profile``) the job's chunk code is run again in this
   process, the real ``ChunkScorer.score`` with its steps wrapped in timers, to show where
   the time goes.
2. **Inline latency.** ``client.predict`` with 1 and with 100 rows of the feature table
   (JSON records), and two raw round trips through the same client plumbing
   (``Client._call``: send_task + result polling every 5 ms): ``cipml.scoring.predict`` for
   a model that does not exist on the ``scoring`` queue (the worker parses the request,
   makes one registry query and refuses ``model_not_found``) and ``cipml.control.get_job``
   of an unknown id on ``control`` (one jobs-table lookup, ``job_not_found``). ``--warmup``
   calls of each first, then ``--calls`` samples of each, interleaved call by call. Target:
   p50 of predict with 1 row within 5 ms of the cheaper raw round trip's p50.

Run from the repository root::

    .venv/bin/python -m benchmarks.scoring_speed                         # 1M rows, 300 calls
    .venv/bin/python -m benchmarks.scoring_speed --rows 200000 --calls 100   # quick
    .venv/bin/python -m benchmarks.scoring_speed --skip-inline --profile

Markdown report on stdout, progress on stderr. Exit status: 0; 1 when a target is missed;
2 when the run failed. The worker's process group is stopped, the database dropped and the
Redis db flushed on the way out (also on Ctrl-C / SIGTERM); after a SIGKILL the worker
(command line containing ``bench-scoring@``) has to be stopped by hand.
"""

from __future__ import annotations

import os

# Single-threaded numerics for the baseline (this process) before numpy is imported; the
# worker gets the same variables in its environment.
THREAD_VARS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
os.environ.update(THREAD_VARS)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import pstats  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from api_client import CipmlError, Client, ServiceUnavailable  # noqa: E402
from api_client.client import _rows_request  # noqa: E402
from api_client.contract import TaskName  # noqa: E402
from api_client.schemas import JobRef  # noqa: E402
from benchmarks.machine import (  # noqa: E402
    describe_machine,
    load_average,
    package_versions,
    report_header,
)
from workers.demo import BUNDLED, churn_features_params  # noqa: E402
from workers.processes import cipml_argv, die_with_parent  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("celery", "kombu", "redis", "scikit-learn", "numpy", "pandas", "pyarrow", "skops")
BATCH_TARGET = 0.67  # ours >= 0.67 x the baseline's rows/s
INLINE_TARGET_MS = 5.0  # p50 of predict(1 row) - p50 of the raw round trip
KEY = "customer_id"
IDS = ("customer_id", "cutoff")
MISSING_MODEL = "bench-no-such-model"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- the service


@dataclass
class Service:
    client: Client
    tmp: Path
    home: Path
    data: Path
    env: dict[str, str]
    database_url: str
    worker: subprocess.Popen[bytes]

    def run(self, job_type: str, params: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
        return self.client.submit(job_type, params).wait(timeout=timeout, progress=False)


def _admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def _drop_database(admin_url: str, name: str) -> None:
    with _admin(admin_url) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _drop_leftovers(admin_url: str) -> None:
    """Databases of earlier runs whose process is gone (killed outright)."""
    with _admin(admin_url) as admin:
        names = [
            row[0]
            for row in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'cipml_bench_%%'"
            )
        ]
    for name in names:
        pid = name.rsplit("_", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            log(f"dropping the leftover database {name}")
            _drop_database(admin_url, name)


@contextlib.contextmanager
def service(options: Options, tmp: Path) -> Iterator[Service]:
    import redis

    database = f"cipml_bench_{os.getpid()}"
    _drop_leftovers(options.postgres_url)
    with _admin(options.postgres_url) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    base = options.postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    database_url = f"{base}/{database}"
    broker = f"{options.redis_url.rstrip('/')}/{options.redis_db}"
    flush = redis.Redis.from_url(broker)
    flush.flushdb()
    home, data = tmp / "home", tmp / "data"
    home.mkdir()
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPML_")}
    env |= THREAD_VARS
    env |= {
        "CIPML_BROKER_URL": broker,
        "CIPML_DATABASE_URL": database_url,
        "CIPML_HOME": str(home),
        "CIPML_ARTIFACT_ROOT": str(home / "artifacts"),
        "CIPML_DATA_ROOTS": str(data),
        "CIPML_LOG_LEVEL": "WARNING",
        "CIPML_THREADS_PER_PROCESS": "1",
        "TMPDIR": str(tmp),
    }
    if options.chunk_rows:
        env["CIPML_SCORE_CHUNK_ROWS"] = str(options.chunk_rows)
    env |= dict(options.worker_env)
    worker: subprocess.Popen[bytes] | None = None
    client: Client | None = None
    try:
        log(f"database {database}, redis db {options.redis_db}: cipml db upgrade")
        subprocess.run(
            cipml_argv("db", "upgrade"), env=env, cwd=ROOT, check=True, capture_output=True
        )
        with open(tmp / "worker.log", "wb") as worker_log:
            worker = subprocess.Popen(
                [
                    *cipml_argv("worker", "-c", str(options.concurrency)),
                    "-n",
                    "bench-scoring@%h",
                ],
                env=env,
                cwd=ROOT,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        client = Client(broker, control_timeout=5)
        _wait_ready(client, worker, tmp / "worker.log")
        client.control_timeout = 60
        yield Service(client, tmp, home, data, env, database_url, worker)
    finally:
        if client is not None:
            client.close()
        if worker is not None:
            _stop(worker)
        with contextlib.suppress(Exception):
            flush.flushdb()
        with contextlib.suppress(Exception):
            _drop_database(options.postgres_url, database)


def _wait_ready(client: Client, worker: subprocess.Popen[bytes], log_path: Path) -> None:
    """Both workers answer: the control-only one (list_jobs) and the pool on ``scoring`` (a
    predict for a missing model, refused)."""
    deadline = time.monotonic() + 120
    while True:
        if worker.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the worker exited with {worker.returncode}:\n{tail}")
        try:
            client.jobs(limit=1)
            _raw_predict(client)
            return
        except ServiceUnavailable:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # the main process stops its pool
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # orphaned pool children, if any
        os.killpg(worker.pid, signal.SIGKILL)


def _sessions(database_url: str) -> Any:
    from storage.db import make_engine, make_session_factory

    return make_session_factory(make_engine(database_url))


# ---------------------------------------------------------------------- setup


@dataclass
class Setup:
    features_id: int
    features: pd.DataFrame
    model_name: str
    family: str
    version: str
    version_id: int
    artifact_sha256: str
    input_schema: list[dict[str, Any]]
    library_versions: dict[str, str]
    training_s: float
    notes: list[str] = field(default_factory=list)


def build_model(svc: Service, family: str) -> Setup:
    from storage.artifact_store import ArtifactStore
    from storage.datasets import DatasetRepository
    from storage.db import transaction
    from storage.model_versions import ModelVersionRepository

    shutil.copyfile(BUNDLED, svc.data / BUNDLED.name)
    log("ingest CDNOW")
    events = svc.run("ingest_dataset", {"uri": BUNDLED.name, "name": "cdnow"})
    log("build_features: churn at 1997-10-01")
    built = svc.run("build_features", churn_features_params(events["dataset_id"]))
    store = ArtifactStore(svc.env["CIPML_ARTIFACT_ROOT"])
    with store.open_verified(built["sha256"]) as handle:
        features = pd.read_parquet(handle)
    name = f"bench-churn-{uuid.uuid4().hex[:6]}"
    config = {
        "model_name": name,
        "model_type": "churn",
        "target": "label",
        "exclude": list(IDS),
        "optimization": {
            "strategy": "random",
            "n_trials": 2,
            "parallelism": 1,
            "families": [family],
        },
        "validation": {"folds": 3},
        "ensemble": {"methods": []},
        "seed": 0,
    }
    log(f"train {name}: {family}, 2 trials")
    began = time.monotonic()
    trained = svc.client.submit_train(int(built["dataset_id"]), config).wait(1800, progress=False)
    training_s = time.monotonic() - began
    svc.client.set_alias(name, "champion", trained["version"], "scoring benchmark")
    with transaction(_sessions(svc.database_url)) as session:
        row = ModelVersionRepository(session).require(trained["model_version_id"])
        schema = [dict(f) for f in row.input_schema]
        fitted_with = dict(row.library_versions)
        sha = row.artifact_sha256
        DatasetRepository(session).require(int(built["dataset_id"]))
    return Setup(
        features_id=int(built["dataset_id"]),
        features=features,
        model_name=name,
        family=str(trained.get("family", family)),
        version=str(trained["version"]),
        version_id=int(trained["model_version_id"]),
        artifact_sha256=sha,
        input_schema=schema,
        library_versions=fitted_with,
        training_s=training_s,
    )


def repeated(features: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The feature table repeated to ``rows`` rows, customer ids made unique (id-k)."""
    copies = math.ceil(rows / len(features))
    ids = features[KEY].astype(str)
    parts = []
    for k in range(copies):
        part = features.copy()
        part[KEY] = ids + f"-{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True).iloc[:rows].reset_index(drop=True)


# ---------------------------------------------------------------------- batch


@dataclass
class BatchResult:
    rows: int
    dataset_id: int
    parquet: Path
    parquet_mb: float
    ingest_s: float
    ours_s: float = float("nan")
    ours_result: dict[str, Any] = field(default_factory=dict)
    job_times: dict[str, float] = field(default_factory=dict)
    baseline_runs: list[dict[str, float]] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)

    @property
    def baseline_s(self) -> float:
        return min(run["total"] for run in self.baseline_runs)

    @property
    def ours_rate(self) -> float:
        return self.rows / self.ours_s

    @property
    def baseline_rate(self) -> float:
        return self.rows / self.baseline_s


def register_big_table(svc: Service, setup: Setup, rows: int) -> BatchResult:
    log(f"build the {rows:,}-row table")
    table = repeated(setup.features, rows)
    path = svc.data / f"churn-features-{rows}.parquet"
    table.to_parquet(path, index=False)
    del table
    log(f"ingest_dataset {path.name} ({path.stat().st_size / 2**20:.0f} MiB)")
    began = time.monotonic()
    ingested = svc.run("ingest_dataset", {"uri": path.name, "name": path.stem})
    return BatchResult(
        rows=int(ingested["rows"]),
        dataset_id=int(ingested["dataset_id"]),
        parquet=path,
        parquet_mb=path.stat().st_size / 2**20,
        ingest_s=time.monotonic() - began,
    )


def stored_path(svc: Service, dataset_id: int) -> tuple[str, Path]:
    """The registered (stored) Parquet of a dataset: what score_dataset reads."""
    from storage.artifact_store import ArtifactStore
    from storage.datasets import DatasetRepository
    from storage.db import transaction

    with transaction(_sessions(svc.database_url)) as session:
        sha = DatasetRepository(session).require(dataset_id).stored_sha256
    store = ArtifactStore(svc.env["CIPML_ARTIFACT_ROOT"])
    return sha, Path(store.local_path(sha))


def run_baseline(svc: Service, setup: Setup, source: Path, out: Path) -> dict[str, float]:
    """pandas + the same pipeline, one thread: load, read, convert, predict_proba, write."""
    from storage.artifact_store import ArtifactStore
    from workers.deployment.model_inputs import to_model_frame
    from workers.training.artifact import load_pipeline

    store = ArtifactStore(svc.env["CIPML_ARTIFACT_ROOT"])
    names = [str(f["name"]) for f in setup.input_schema]
    columns = list(dict.fromkeys([KEY, *names]))
    steps: dict[str, float] = {}
    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        pipeline = load_pipeline(store.read_bytes(setup.artifact_sha256), setup.library_versions)
        t1 = time.perf_counter()
        frame = pd.read_parquet(source, columns=columns)
        t2 = time.perf_counter()
        X = to_model_frame(frame, setup.input_schema)
        t3 = time.perf_counter()
        score = pipeline.predict_proba(X)[:, 1]
        t4 = time.perf_counter()
        pd.DataFrame({KEY: frame[KEY], "score": score}).to_parquet(out, index=False)
        t5 = time.perf_counter()
    steps = {
        "load pipeline": t1 - t0,
        "read_parquet": t2 - t1,
        "to_model_frame": t3 - t2,
        "predict_proba": t4 - t3,
        "to_parquet": t5 - t4,
        "total": t5 - t0,
    }
    out.unlink(missing_ok=True)
    return steps


def job_timeline(svc: Service, job_id: str) -> dict[str, float]:
    from storage.db import transaction
    from storage.models import Job

    with transaction(_sessions(svc.database_url)) as session:
        job = session.get(Job, job_id)
        assert job is not None
        stamps = {
            "submitted": job.submitted_at,
            "created": getattr(job, "created_at", None),
            "started": job.started_at,
            "finished": job.finished_at,
        }
    times: dict[str, float] = {}
    if stamps["submitted"] and stamps["started"]:
        times["submit -> started (s)"] = (stamps["started"] - stamps["submitted"]).total_seconds()
    if stamps["started"] and stamps["finished"]:
        times["started -> finished (s)"] = (stamps["finished"] - stamps["started"]).total_seconds()
    return times


def batch(svc: Service, setup: Setup, options: Options) -> BatchResult:
    result = register_big_table(svc, setup, options.rows)
    _sha, source = stored_path(svc, result.dataset_id)
    out = svc.tmp / "baseline-scores.parquet"
    log("warm-up: score_dataset on the feature table (untimed)")
    svc.client.score_dataset(setup.model_name, setup.features_id).wait(600, progress=False)
    log("baseline run 1: pandas + predict_proba, one thread")
    result.baseline_runs.append(run_baseline(svc, setup, source, out))
    log(f"  {result.baseline_runs[-1]['total']:.2f} s")
    log(f"ours: score_dataset of {result.rows:,} rows")
    began = time.monotonic()
    handle = svc.client.score_dataset(setup.model_name, result.dataset_id)
    result.ours_result = handle.wait(3600, progress=False)
    result.ours_s = time.monotonic() - began
    log(f"  {result.ours_s:.2f} s")
    result.job_times = job_timeline(svc, handle.id)
    log("baseline run 2")
    result.baseline_runs.append(run_baseline(svc, setup, source, out))
    log(f"  {result.baseline_runs[-1]['total']:.2f} s")
    missed = result.ours_rate < BATCH_TARGET * result.baseline_rate
    if options.profile or missed:
        log("profile: the job's chunk code in this process, steps timed")
        result.profile = profile_chunks(svc, setup, source, options)
    return result


# ---------------------------------------------------------------------- profile


class _Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - began

        return timed

    @contextlib.contextmanager
    def time(self, label: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[label] += time.perf_counter() - began


@dataclass
class _FakeContext:
    job_id: str
    sessions: Any

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        from storage.db import transaction

        with transaction(self.sessions) as session:
            yield session


def profile_chunks(svc: Service, setup: Setup, source: Path, options: Options) -> list[str]:
    """The loop of run_score_dataset with the real ChunkScorer.score, on one thread, its
    helpers wrapped in timers (in this process only; no file changes), writing the log to a
    scratch prediction-log folder and the output to a scratch Parquet."""
    from api_client.registry_params import ScoreDatasetParams
    from storage.artifact_store import ArtifactStore
    from storage.db import transaction
    from storage.models import ModelVersion
    from storage.prediction_log import PredictionLog
    from workers.deployment import score_dataset_job as job
    from workers.deployment.serving import ServingVersion
    from workers.settings import Settings
    from workers.training.artifact import load_pipeline

    timers = _Timers()
    patched = {
        "check_chunk": "validate: check_chunk",
        "route_all": "route: route_all",
        "to_model_frame": "to_model_frame",
        "score_rows": "score_rows (predict_proba + labels)",
        "log_records": "log_records (log frame)",
        "_prediction_ids": "_prediction_ids (sha256 per row)",
    }
    originals = {name: getattr(job, name) for name in patched}
    sessions = _sessions(svc.database_url)
    with transaction(sessions) as session:
        row = session.get(ModelVersion, setup.version_id)
        assert row is not None
        version = ServingVersion.of(row)
    store = ArtifactStore(svc.env["CIPML_ARTIFACT_ROOT"])
    pipeline = load_pipeline(store.read_bytes(setup.artifact_sha256), setup.library_versions)
    log_store = PredictionLog(str(svc.tmp / "profile-predictions"))
    original_write = log_store.write
    log_store.write = timers.wrap("PredictionLog.write", original_write)  # type: ignore[method-assign]
    params = ScoreDatasetParams(model_name=setup.model_name, dataset_id=setup.features_id)
    chunk_rows = options.chunk_rows or Settings().score_chunk_rows
    ctx = _FakeContext(f"profile{uuid.uuid4().hex[:24]}", sessions)
    scorer = job.ChunkScorer(ctx, log_store, version, pipeline, params, datetime.now(UTC))  # type: ignore[arg-type]
    out_path = svc.tmp / "profile-scored.parquet"
    profiler = cProfile.Profile() if options.cprofile else None
    writer = None
    total = 0.0
    try:
        for name, label in patched.items():
            setattr(job, name, timers.wrap(label, originals[name]))
        with threadpool_limits(limits=1):
            began = time.perf_counter()
            if profiler:
                profiler.enable()
            source_file = pq.ParquetFile(source)
            needed = list(dict.fromkeys([KEY, *(str(f["name"]) for f in version.input_schema)]))
            row0 = 0
            batches = source_file.iter_batches(batch_size=chunk_rows, columns=needed)
            number = 0
            while True:
                with timers.time("read: iter_batches + to_pandas"):
                    batch = next(batches, None)
                    if batch is None:
                        break
                    frame = batch.to_pandas()
                with timers.time("ChunkScorer.score (all)"):
                    table = scorer.score(frame, number, row0)
                with timers.time("output: ParquetWriter.write_table"):
                    writer = writer or pq.ParquetWriter(out_path, table.schema, compression="zstd")
                    writer.write_table(table)
                row0 += len(frame)
                number += 1
            with timers.time("output: ParquetWriter.close"):
                if writer is not None:
                    writer.close()
            if profiler:
                profiler.disable()
            total = time.perf_counter() - began
    finally:
        for name in patched:
            setattr(job, name, originals[name])
        log_store.write = original_write  # type: ignore[method-assign]
    seconds = dict(timers.seconds)
    inside = sum(seconds.get(label, 0.0) for label in [*patched.values(), "PredictionLog.write"])
    seconds["score(): the rest (keys astype, label/arm loop, pa.table)"] = (
        seconds.get("ChunkScorer.score (all)", 0.0) - inside
    )
    lines = [
        f"Profile: {row0:,} rows in chunks of {chunk_rows:,}, one thread, {total:.2f} s "
        f"({row0 / total:,.0f} rows/s) for the chunk loop in this process (no queue, no "
        "job row, no sha256 of the source, no artifact put / dataset registration).",
        "",
        "| step | s | share of loop | us/row |",
        "|---|---:|---:|---:|",
    ]
    order = [
        "read: iter_batches + to_pandas",
        "validate: check_chunk",
        "_prediction_ids (sha256 per row)",
        "route: route_all",
        "to_model_frame",
        "score_rows (predict_proba + labels)",
        "log_records (log frame)",
        "PredictionLog.write",
        "score(): the rest (keys astype, label/arm loop, pa.table)",
        "output: ParquetWriter.write_table",
        "output: ParquetWriter.close",
    ]
    for label in order:
        s = seconds.get(label, 0.0)
        lines.append(f"| {label} | {s:.2f} | {s / total:.1%} | {s * 1e6 / max(row0, 1):.2f} |")
    if profiler:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(25)
        lines += ["", "cProfile, top 25 by own time:", "", "```", buffer.getvalue().strip(), "```"]
    out_path.unlink(missing_ok=True)
    return lines


# ---------------------------------------------------------------------- inline


def _missing_model_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return _rows_request(model_name=MISSING_MODEL, rows=rows, key_column=KEY, alias="champion")


def _raw_predict(client: Client, payload: dict[str, Any] | None = None) -> None:
    """cipml.scoring.predict for a model that does not exist: refused at once."""
    payload = payload or _missing_model_request([{KEY: "x"}])
    try:
        client._call(TaskName.PREDICT, payload, queue="scoring")
    except ServiceUnavailable:
        raise
    except CipmlError as exc:
        assert exc.code == "model_not_found", exc.code
        return
    raise AssertionError("a predict for a missing model was answered")


@dataclass
class Series:
    label: str
    samples_ms: list[float] = field(default_factory=list)
    worker_ms: list[float] = field(default_factory=list)  # predict's own latency_ms

    def pct(self, q: float) -> float:
        return float(np.percentile(self.samples_ms, q)) if self.samples_ms else float("nan")


def json_rows(features: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """Rows as a client sends them: plain JSON values, no label, no cutoff."""
    plain = features.head(n).drop(columns=["label", "cutoff"], errors="ignore").astype(object)
    rows = []
    for row in plain.to_dict("records"):
        clean: dict[str, Any] = {}
        for k, v in row.items():
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                clean[k] = None
            elif isinstance(v, pd.Timestamp):
                clean[k] = v.isoformat()
            elif isinstance(v, np.generic):
                clean[k] = v.item()
            else:
                clean[k] = v
        clean[KEY] = str(clean[KEY])
        rows.append(clean)
    return rows


def inline(svc: Service, setup: Setup, options: Options) -> dict[str, Series]:
    client = svc.client
    one, hundred = json_rows(setup.features, 1), json_rows(setup.features, 100)
    refusal = _missing_model_request(one)

    def predict_1() -> float:
        answer = client.predict(setup.model_name, one)
        assert answer["scored"] == 1, answer
        return float(answer["latency_ms"])

    def predict_100() -> float:
        answer = client.predict(setup.model_name, hundred)
        assert answer["scored"] == 100, answer
        return float(answer["latency_ms"])

    def raw_predict() -> None:
        _raw_predict(client, refusal)

    def raw_get_job() -> None:
        payload = JobRef(job_id=uuid.uuid4().hex).model_dump()
        try:
            client._call(TaskName.GET_JOB, payload, queue="control")
        except CipmlError as exc:
            assert exc.code == "job_not_found", exc.code
            return
        raise AssertionError("get_job of an unknown id was answered")

    calls: dict[str, Callable[[], float | None]] = {
        "raw: cipml.scoring.predict, missing model (scoring)": raw_predict,
        "raw: cipml.control.get_job, unknown id (control)": raw_get_job,
        "ours: predict, 1 row": predict_1,
        "ours: predict, 100 rows": predict_100,
    }
    series = {label: Series(label) for label in calls}
    log(f"inline: {options.warmup} warm-up calls of each")
    for _ in range(options.warmup):
        for call in calls.values():
            call()
    log(f"inline: {options.calls} samples of each, interleaved")
    for i in range(options.calls):
        for label, call in calls.items():
            began = time.perf_counter()
            worker_ms = call()
            series[label].samples_ms.append((time.perf_counter() - began) * 1000)
            if worker_ms is not None:
                series[label].worker_ms.append(worker_ms)
        if (i + 1) % 100 == 0:
            log(f"  {i + 1}/{options.calls}")
    return series


def inline_missed(series: dict[str, Series]) -> bool:
    raw = min(v.pct(50) for k, v in series.items() if k.startswith("raw"))
    return series["ours: predict, 1 row"].pct(50) - raw > INLINE_TARGET_MS


def profile_inline(svc: Service, setup: Setup, options: Options) -> list[str]:
    """``workers.deployment.predict.predict`` called in this process (no broker) with the
    worker's settings, its steps wrapped in timers; plus the request's parse and the JSON
    of request and reply, which the task does around it. Median per call."""
    import json

    from api_client.registry_params import PredictRequest
    from storage.artifact_store import ArtifactStore
    from storage.prediction_log import PredictionLog
    from workers.deployment import predict as module
    from workers.deployment.log_buffer import LogBuffer
    from workers.deployment.services import ScoringServices
    from workers.settings import Settings

    saved = {k: os.environ.get(k) for k in svc.env if k.startswith("CIPML_")}
    os.environ.update({k: v for k, v in svc.env.items() if k.startswith("CIPML_")})
    try:
        settings = Settings()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    sessions = _sessions(svc.database_url)
    log_store = PredictionLog(str(svc.tmp / "profile-inline-predictions"))
    services = ScoringServices(
        settings=settings,
        sessions=sessions,
        store=ArtifactStore(svc.env["CIPML_ARTIFACT_ROOT"]),
        log_store=log_store,
        log_buffer=LogBuffer(log_store, sessions, settings.prediction_log_flush_s),
    )
    wrapped = {
        "serving_version": "registry: alias read (+ version facts on a cache miss)",
        "load_pipeline_for": "load_pipeline_for (cached)",
        "validate_rows": "validate_rows",
        "route_all": "route_all",
        "to_model_frame": "to_model_frame",
        "score_rows": "score_rows (predict_proba + labels)",
        "log_records": "log_records (log frame)",
    }
    originals = {name: getattr(module, name) for name in wrapped}
    lines = [
        "Inline profile: `predict()` in this process (no broker), the worker's settings, "
        "medians per call in ms (the registry timer includes the queries inside it).",
        "",
        "| step | 1 row | 100 rows |",
        "|---|---:|---:|",
    ]
    per_size: dict[int, dict[str, float]] = {}
    cprofile_text = ""
    try:
        for size in (1, 100):
            rows = json_rows(setup.features, size)
            payload = _rows_request(model_name=setup.model_name, rows=rows, key_column=KEY)
            samples: dict[str, list[float]] = defaultdict(list)
            profiler = cProfile.Profile() if options.cprofile and size == 1 else None
            for i in range(options.warmup + options.calls):
                timers = _Timers()
                for name, label in wrapped.items():
                    fn = originals[name]
                    fn = timers.wrap(label, fn)
                    setattr(module, name, fn)
                services.log_buffer.add = timers.wrap(  # type: ignore[method-assign]
                    "log_buffer.add", LogBuffer.add.__get__(services.log_buffer)
                )
                if profiler and i >= options.warmup:
                    profiler.enable()
                began = time.perf_counter()
                with timers.time("json decode request"):
                    body = json.loads(json.dumps(payload))
                with timers.time("PredictRequest.model_validate"):
                    request = PredictRequest.model_validate(body)
                with timers.time("predict() (all)"):
                    answer = module.predict(services, request)
                with timers.time("json encode reply"):
                    json.dumps(answer)
                total = time.perf_counter() - began
                if profiler and i >= options.warmup:
                    profiler.disable()
                if i >= options.warmup:
                    for label, seconds in timers.seconds.items():
                        samples[label].append(seconds * 1000)
                    samples["total"].append(total * 1000)
            per_size[size] = {label: float(np.median(v)) for label, v in samples.items()}
            if profiler:
                buffer = io.StringIO()
                stats = pstats.Stats(profiler, stream=buffer)
                stats.sort_stats("cumulative").print_stats(30)
                cprofile_text = buffer.getvalue().strip()
    finally:
        for name in wrapped:
            setattr(module, name, originals[name])
        services.log_buffer.flush()
    order = [
        "json decode request",
        "PredictRequest.model_validate",
        "registry: alias read (+ version facts on a cache miss)",
        "load_pipeline_for (cached)",
        "validate_rows",
        "route_all",
        "to_model_frame",
        "score_rows (predict_proba + labels)",
        "log_records (log frame)",
        "log_buffer.add",
        "predict() (all)",
        "json encode reply",
        "total",
    ]
    for label in order:
        lines.append(
            f"| {label} | {per_size[1].get(label, 0.0):.2f} | {per_size[100].get(label, 0.0):.2f} |"
        )
    if cprofile_text:
        lines += ["", "cProfile of the 1-row calls, top 30 cumulative:", "", "```"]
        lines += [cprofile_text, "```"]
    return lines


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def report_lines(
    setup: Setup | None,
    batch_result: BatchResult | None,
    series: dict[str, Series] | None,
    options: Options,
) -> tuple[list[str], bool]:
    missed = False
    lines = [
        "| measure | ours | baseline | ratio | target | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    if batch_result is not None:
        b = batch_result
        ratio = b.ours_rate / b.baseline_rate
        met = ratio >= BATCH_TARGET
        missed |= not met
        lines.append(
            f"| batch: rows/s, {b.rows:,} rows (submit -> result vs pandas + predict_proba) | "
            f"{b.ours_rate:,.0f} ({b.ours_s:.2f} s) | {b.baseline_rate:,.0f} "
            f"({b.baseline_s:.2f} s) | {ratio:.2f} x | >= {BATCH_TARGET} x | {verdict(met)} |"
        )
    if series is not None:
        raws = {k: v for k, v in series.items() if k.startswith("raw")}
        cheaper_label = min(raws, key=lambda k: raws[k].pct(50))
        cheaper = raws[cheaper_label]
        one = series["ours: predict, 1 row"]
        hundred = series["ours: predict, 100 rows"]
        gap = one.pct(50) - cheaper.pct(50)
        met = gap <= INLINE_TARGET_MS
        missed |= not met
        lines.append(
            f"| inline p50, 1 row (vs {cheaper_label.split(':')[1].split(',')[0].strip()}) | "
            f"{one.pct(50):.2f} ms | {cheaper.pct(50):.2f} ms | +{gap:.2f} ms | "
            f"<= +{INLINE_TARGET_MS:g} ms | {verdict(met)} |"
        )
        lines.append(
            f"| inline p99, 1 row | {one.pct(99):.2f} ms | {cheaper.pct(99):.2f} ms | "
            f"+{one.pct(99) - cheaper.pct(99):.2f} ms | - | - |"
        )
        lines.append(
            f"| inline p50, 100 rows | {hundred.pct(50):.2f} ms | {cheaper.pct(50):.2f} ms | "
            f"+{hundred.pct(50) - cheaper.pct(50):.2f} ms | - | - |"
        )
        lines.append(
            f"| inline p99, 100 rows | {hundred.pct(99):.2f} ms | {cheaper.pct(99):.2f} ms | "
            f"+{hundred.pct(99) - cheaper.pct(99):.2f} ms | - | - |"
        )
    lines.append("")
    if setup is not None:
        lines.append(
            f"Model: {setup.model_name} {setup.version}, family **{setup.family}** (random "
            f"search, 2 trials, 3 folds, no ensemble; trained in {setup.training_s:.0f} s), "
            f"{len(setup.input_schema)} inputs; feature table {len(setup.features):,} rows x "
            f"{setup.features.shape[1]} columns (CDNOW, cutoff 1997-10-01)."
        )
    if batch_result is not None:
        b = batch_result
        r = b.ours_result
        lines += [
            "",
            f"Batch: {b.rows:,} rows (the feature table repeated, ids made unique), Parquet "
            f"{b.parquet_mb:.0f} MiB as written by pandas; ingest_dataset took "
            f"{b.ingest_s:.1f} s (not counted). Chunks: "
            f"{options.chunk_rows or 'service default'} rows. Ours: the job reports "
            f"{r.get('rows_per_s')} rows/s for its own scoring loop (source open -> output "
            f"written), scored {r.get('scored'):,}, rejected {r.get('rejected'):,}, logged "
            f"{r.get('logged')}; jobs row: "
            + ", ".join(f"{k} {v:.2f}" for k, v in b.job_times.items())
            + ".",
            "",
            "| baseline step (s) | "
            + " | ".join(f"run {i + 1}" for i in range(len(b.baseline_runs)))
            + " |",
            "|---|" + "---:|" * len(b.baseline_runs),
        ]
        for step in b.baseline_runs[0]:
            lines.append(
                f"| {step} | " + " | ".join(f"{run[step]:.2f}" for run in b.baseline_runs) + " |"
            )
        if b.profile:
            lines += ["", *b.profile]
    if series is not None:
        lines += [
            "",
            f"Inline: {options.calls} samples of each after {options.warmup} warm-up calls "
            "each, interleaved call by call, one call in flight; all through Client._call "
            "(send_task, result polled every 5 ms).",
            "",
            "| series | p50 ms | p90 ms | p99 ms | mean ms | min ms | max ms | "
            "worker latency_ms p50 / p99 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in series.values():
            own = (
                f"{np.percentile(s.worker_ms, 50):.2f} / {np.percentile(s.worker_ms, 99):.2f}"
                if s.worker_ms
                else "-"
            )
            lines.append(
                f"| {s.label} | {s.pct(50):.2f} | {s.pct(90):.2f} | {s.pct(99):.2f} | "
                f"{np.mean(s.samples_ms):.2f} | {min(s.samples_ms):.2f} | "
                f"{max(s.samples_ms):.2f} | {own} |"
            )
        lines += [
            "",
            "worker latency_ms: what predict() reports, from the start of its work to the "
            "log rows built (registry lookup, validation, routing, scoring, log frame); "
            "the rest of a call is the round trip, parsing, the reply and result polling.",
        ]
    return lines, missed


# ---------------------------------------------------------------------- main


@dataclass(frozen=True)
class Options:
    rows: int
    calls: int
    warmup: int
    skip_batch: bool
    skip_inline: bool
    family: str
    chunk_rows: int | None
    concurrency: int
    redis_url: str
    redis_db: int
    postgres_url: str
    profile: bool
    cprofile: bool
    output: Path | None
    keep_logs: bool
    worker_env: tuple[tuple[str, str], ...] = ()


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scoring_speed",
        description="score_dataset vs pandas + predict_proba; predict latency vs raw Celery.",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="batch rows (1,000,000)")
    parser.add_argument("--calls", type=int, default=300, help="inline samples per series (300)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls per series (20)")
    parser.add_argument("--skip-batch", action="store_true", help="no batch measurement")
    parser.add_argument("--skip-inline", action="store_true", help="no inline measurement")
    parser.add_argument(
        "--family",
        default="logistic_regression",
        choices=["logistic_regression", "hist_gradient_boosting"],
        help="model family trained for the benchmark (logistic_regression)",
    )
    parser.add_argument(
        "--chunk-rows", type=int, help="CIPML_SCORE_CHUNK_ROWS of the worker (service default)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="worker -c (2)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=11, help="flushed! (11)")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin database, used to create and drop cipml_bench_<pid>",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the batch (automatic when missed)"
    )
    parser.add_argument("--cprofile", action="store_true", help="add cProfile to the profile")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of the worker, e.g. CIPML_PREDICTION_LOG_FLUSH_S=60 (repeat)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.calls < 10 or args.warmup < 0:
        parser.error("--rows >= 1000, --calls >= 10, --warmup >= 0")
    if args.skip_batch and args.skip_inline:
        parser.error("nothing to measure")
    if any("=" not in item for item in args.worker_env):
        parser.error("--worker-env takes KEY=VALUE")
    return Options(
        args.rows,
        args.calls,
        args.warmup,
        args.skip_batch,
        args.skip_inline,
        args.family,
        args.chunk_rows,
        args.concurrency,
        args.redis_url,
        args.redis_db,
        args.postgres_url,
        args.profile,
        args.cprofile,
        args.output,
        args.keep_logs,
        tuple((k, v) for k, v in (item.split("=", 1) for item in args.worker_env)),
    )


@contextlib.contextmanager
def _without(names: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    command = "python -m benchmarks.scoring_speed " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    started, load_before = datetime.now(UTC), load_average()
    log(f"load average before: {load_before}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on SIGTERM too
    tmp = Path(tempfile.mkdtemp(prefix="cipml_scoring_"))
    setup: Setup | None = None
    batch_result: BatchResult | None = None
    series: dict[str, Series] | None = None
    inline_profile: list[str] = []
    status = 0
    try:
        with service(options, tmp) as svc:
            setup = build_model(svc, options.family)
            if not options.skip_inline:
                series = inline(svc, setup, options)
                if options.profile or inline_missed(series):
                    log("profile: predict() in this process, steps timed")
                    inline_profile = profile_inline(svc, setup, options)
            if not options.skip_batch:
                batch_result = batch(svc, setup, options)
    except Exception as exc:
        import traceback

        log(traceback.format_exc())
        log(f"the run failed: {exc}")
        status = 2
    finally:
        if options.keep_logs:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    load_after = load_average()
    versions = package_versions(PACKAGES)
    with _without(THREAD_VARS):  # GNU nproc honours OMP_NUM_THREADS
        machine = describe_machine(ROOT, versions)
    header = report_header(started, command, machine, load_before, load_after)
    lines, missed = report_lines(setup, batch_result, series, options)
    if inline_profile:
        lines += ["", *inline_profile]
    report = "\n".join(
        [
            "## Scoring speed (`benchmarks/scoring_speed.py`)",
            "",
            *header,
            f"Threads: OMP/OpenBLAS/MKL = 1 in the worker and in this process (baseline "
            f"under threadpoolctl limit 1); worker `cipml worker -c {options.concurrency}` "
            "on Redis + PostgreSQL"
            + (
                "; worker env " + ", ".join(f"{k}={v}" for k, v in options.worker_env)
                if options.worker_env
                else ""
            )
            + ".",
            "",
            *lines,
        ]
    )
    print(report)
    if options.output:
        options.output.write_text(report + "\n")
    if status:
        return status
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

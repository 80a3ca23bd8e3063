"""Monitoring checks through the service: one check of a 1M-row window, and a sweep of 200
monitored deployments on 2 monitoring workers (issue #10).

Setup (untimed): a fresh PostgreSQL database ``cipml_bench_<pid>`` and a Redis db number
(default 10, **flushed** at the start and the end); a control worker (``cipml worker -Q
control``, 4 threads) for the whole run and a setup worker (``-Q
preprocessing,training,trials,scoring -c 2``) that ingests the bundled CDNOW log, builds the
demo's churn features (23,570 customers) and trains a small churn model (logistic
regression, 2 trials: ``benchmarks.scoring_speed.build_model``); the setup worker is
stopped before anything is measured. Every worker runs with ``OMP_NUM_THREADS=1`` (and the
other BLAS caps) and ``CIPML_THREADS_PER_PROCESS=1``. Log rows are written by this process
straight into the prediction log (``PredictionLog.write``, the worker's log root): rows of
the feature table drawn with replacement (seeded), scored by the trained pipeline in this
process (real scores and labels), ``predicted_at`` spread over the last hour, arm
``champion``, latency drawn from a log-normal around 4 ms, prediction ids made per minute
of ``predicted_at``. Outcomes are recorded by routing key (the customer's churn label).

1. **Window.** The trained model is deployed (``client.deploy``), ``--rows`` (1,000,000)
   log rows are written in batches of 100,000, every customer's outcome is recorded (23,570
   outcomes by key: every row of the window is labelled), then one fresh ``cipml worker -Q
   monitoring -c 1`` runs ``client.check(name, window="2h")`` twice: first (cold process,
   the reference read and scored) and warm (the worker keeps the reference). Reported: the
   job's wall time (jobs row ``started_at`` -> ``finished_at``), the client's submit ->
   result, and a breakdown from the job's progress stages (timestamped by the worker,
   caught by a subscription on the result backend's channels): resolve (the version and
   its pipeline) -> reference -> window (the log read, outcomes joined) -> statistics
   (drift, performance, quality, health, the HTML report, storing) -> finish. Target:
   job wall <= 10 s. ``--no-window-outcomes``: no outcomes (no performance part).
2. **Sweep.** ``--models`` (200) model names, each registered by copying the trained
   version's ``model_versions`` row (same artifact and dataset; a job row of its own),
   deployed with ``client.deploy``, ``--model-rows`` (10,000) log rows each and
   ``--model-outcomes`` (500) outcomes by key each; two fresh ``cipml worker -Q monitoring
   -c 1``; then ONE ``cipml.scheduler.sweep_monitoring`` task (``interval_s`` 86400) sent
   to ``control``, timed until every one of its check jobs is SUCCEEDED (jobs table polled
   every 0.5 s, one counting query; the end is the last ``finished_at``). Each check reads
   its own reference (the copies are distinct versions: nothing is cached between models).
   Target: <= 60 s.
3. **Profile** (``--profile``, automatic when the window target is missed): the window
   check's code run again in this process on the same data (one thread, no broker), its
   steps timed by wrapping the functions it calls (``PredictionLog.read``,
   ``OutcomeRepository.window``, ``join_outcomes``, ``data_drift``, ...), plus the top
   of a cProfile by own time.

Run from the repository root::

    .venv/bin/python -m benchmarks.monitoring_service                     # about 5 minutes
    .venv/bin/python -m benchmarks.monitoring_service --skip-sweep --rows 200000   # quick
    .venv/bin/python -m benchmarks.monitoring_service --skip-window --models 20

Markdown report on stdout, progress on stderr. Exit status: 0; 1 when a target is missed;
2 when the run failed. Workers are stopped, the database dropped and the Redis db flushed
on the way out (also on Ctrl-C / SIGTERM); after a SIGKILL the workers (command lines
containing ``bench-mon``) have to be stopped by hand.
"""

from __future__ import annotations

import os

THREAD_VARS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
os.environ.update(THREAD_VARS)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from api_client import Client  # noqa: E402
from api_client.contract import TaskName  # noqa: E402
from benchmarks.machine import (  # noqa: E402
    describe_machine,
    load_average,
    package_versions,
    report_header,
)
from benchmarks.scoring_speed import (  # noqa: E402
    Service,
    Setup,
    _admin,
    _drop_database,
    _drop_leftovers,
    _sessions,
    _stop,
    build_model,
    log,
)
from workers.processes import cipml_argv, die_with_parent  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("celery", "redis", "scikit-learn", "numpy", "pandas", "pyarrow", "scipy")
WINDOW_TARGET_S = 10.0
SWEEP_TARGET_S = 60.0
KEY = "customer_id"
BATCH_ROWS = 100_000
POLL_S = 0.5
REFERENCE_ROWS = 10_000  # CIPML_MONITORING_REFERENCE_ROWS, the service default
STAGES = ("reference", "window", "statistics", "done")


# ---------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    rows: int
    models: int
    model_rows: int
    model_outcomes: int
    skip_window: bool
    skip_sweep: bool
    interval_s: float
    seed: int
    timeout: float
    redis_url: str
    redis_db: int
    postgres_url: str
    output: Path | None
    keep_logs: bool
    profile: bool
    window_outcomes: bool = True


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.monitoring_service",
        description="A 1M-row monitoring check and a 200-model sweep through the service.",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="window rows (1,000,000)")
    parser.add_argument("--models", type=int, default=200, help="swept deployments (200)")
    parser.add_argument("--model-rows", type=int, default=10_000, help="rows per model (10,000)")
    parser.add_argument(
        "--model-outcomes", type=int, default=500, help="outcomes by key per swept model (500)"
    )
    parser.add_argument("--skip-window", action="store_true", help="no 1M-row window check")
    parser.add_argument("--skip-sweep", action="store_true", help="no sweep")
    parser.add_argument(
        "--interval-s", type=float, default=86400, help="the sweep's interval_s (86400)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900, help="per check / sweep (900 s)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=10, help="flushed! (10)")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="admin database, used to create and drop cipml_bench_<pid>",
    )
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--profile", action="store_true", help="profile the window check (automatic when missed)"
    )
    parser.add_argument(
        "--no-window-outcomes",
        action="store_true",
        help="record no outcomes for the window (no performance part in the check)",
    )
    args = parser.parse_args(argv)
    if args.skip_window and args.skip_sweep:
        parser.error("nothing to measure")
    if args.rows < 1000 or args.models < 1 or args.model_rows < 100 or args.model_outcomes < 0:
        parser.error("--rows >= 1000, --models >= 1, --model-rows >= 100, --model-outcomes >= 0")
    return Options(
        args.rows,
        args.models,
        args.model_rows,
        args.model_outcomes,
        args.skip_window,
        args.skip_sweep,
        args.interval_s,
        args.seed,
        args.timeout,
        args.redis_url,
        args.redis_db,
        args.postgres_url,
        args.output,
        args.keep_logs,
        args.profile,
        not args.no_window_outcomes,
    )


# ---------------------------------------------------------------------- the service


@dataclass
class Stack:
    """The database, the Redis db, the environment, and every worker started (stopped at
    the end, whatever happens)."""

    client: Client
    tmp: Path
    home: Path
    data: Path
    env: dict[str, str]
    database_url: str
    broker: str
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _sessions: Any = None

    @property
    def sessions(self) -> Any:
        """One session factory (one engine, one pool) for the whole run."""
        if self._sessions is None:
            self._sessions = _sessions(self.database_url)
        return self._sessions

    def start_worker(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{name}.log", "ab") as out:
            worker = subprocess.Popen(
                [*cipml_argv("worker", "-n", f"{name}@%h", *args)],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.workers[name] = worker
        return worker

    def stop_worker(self, name: str) -> None:
        worker = self.workers.pop(name, None)
        if worker is not None:
            _stop(worker)

    def wait_ready(self, names: Sequence[str], timeout: float = 120) -> None:
        """Every named worker answers a ping."""
        host = socket.gethostname()
        wanted = {f"{name}@{host}" for name in names}
        deadline = time.monotonic() + timeout
        while True:
            for name in names:
                worker = self.workers[name]
                if worker.poll() is not None:
                    tail = (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {worker.returncode}:\n{tail}")
            replies = self.client._app.control.ping(timeout=0.5)
            seen = {node for reply in replies for node in reply}
            if wanted <= seen:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {timeout:.0f} s: {wanted - seen}")

    def service(self, worker: str) -> Service:
        return Service(
            self.client,
            self.tmp,
            self.home,
            self.data,
            self.env,
            self.database_url,
            self.workers[worker],
        )


@contextlib.contextmanager
def stack(options: Options, tmp: Path) -> Iterator[Stack]:
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
        "CIPML_PREDICTION_LOG_ROOT": str(home / "predictions"),
        "CIPML_DATA_ROOTS": str(data),
        "CIPML_LOG_LEVEL": "WARNING",
        "CIPML_THREADS_PER_PROCESS": "1",
        "TMPDIR": str(tmp),
    }
    client: Client | None = None
    current: Stack | None = None
    try:
        log(f"database {database}, redis db {options.redis_db}: cipml db upgrade")
        subprocess.run(
            cipml_argv("db", "upgrade"), env=env, cwd=ROOT, check=True, capture_output=True
        )
        client = Client(broker, control_timeout=60)
        current = Stack(client, tmp, home, data, env, database_url, broker)
        current.start_worker("bench-mon-control", "-Q", "control", "--pool", "threads", "-c", "4")
        current.wait_ready(["bench-mon-control"])
        yield current
    finally:
        if current is not None:
            for name in list(current.workers):
                with contextlib.suppress(Exception):
                    current.stop_worker(name)
        if client is not None:
            client.close()
        with contextlib.suppress(Exception):
            flush.flushdb()
        with contextlib.suppress(Exception):
            _drop_database(options.postgres_url, database)


# ---------------------------------------------------------------------- progress watcher


class ProgressWatcher:
    """Every result the Redis backend publishes (``celery-task-meta-<id>``), kept with its
    arrival time; the progress payloads carry the worker's own ``updated_at``."""

    def __init__(self, redis_url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(redis_url)
        self._pubsub = self._client.pubsub()
        self._pubsub.psubscribe("celery-task-meta-*")
        self.messages: list[tuple[float, str, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                message = self._pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "pmessage":
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    self.messages.append((time.time(), channel, message["data"]))

    def stages(self, job_id: str) -> dict[str, datetime]:
        """The first time each progress stage of ``job_id`` was reported."""
        found: dict[str, datetime] = {}
        for arrived, channel, data in list(self.messages):
            if not channel.endswith(job_id):
                continue
            try:
                body = json.loads(data)
                progress = (body.get("result") or {}).get("progress") or {}
            except (ValueError, AttributeError):
                continue
            stage = progress.get("stage")
            if not stage or stage in found:
                continue
            at = progress.get("updated_at")
            found[stage] = (
                datetime.fromisoformat(at) if at else datetime.fromtimestamp(arrived, UTC)
            )
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(Exception):
            self._pubsub.close()
            self._client.close()


# ---------------------------------------------------------------------- log rows


@dataclass
class Pool:
    """The feature table with the trained version's scores and labels: what log rows are
    drawn from."""

    features: pd.DataFrame  # the version's inputs
    keys: np.ndarray  # customer ids as text
    scores: np.ndarray
    labels: np.ndarray
    truth: np.ndarray  # the churn label, the outcome


def scored_pool(stk: Stack, setup: Setup) -> Pool:
    from storage.artifact_store import ArtifactStore
    from storage.db import transaction
    from storage.model_versions import ModelVersionRepository
    from workers.deployment.model_inputs import to_model_frame
    from workers.deployment.outputs import score_rows
    from workers.deployment.serving import ServingVersion
    from workers.training.artifact import load_pipeline

    with transaction(stk.sessions) as session:
        serving = ServingVersion.of(ModelVersionRepository(session).require(setup.version_id))
    store = ArtifactStore(stk.env["CIPML_ARTIFACT_ROOT"])
    pipeline = load_pipeline(store.read_bytes(setup.artifact_sha256), setup.library_versions)
    names = [str(f["name"]) for f in setup.input_schema]
    inputs = setup.features[names].reset_index(drop=True)
    outputs = score_rows(pipeline, to_model_frame(inputs, setup.input_schema), serving)
    labels = np.asarray(outputs.label, dtype=object)
    return Pool(
        features=inputs,
        keys=setup.features[KEY].astype(str).to_numpy(),
        scores=np.asarray(outputs.score, dtype=float),
        labels=labels,
        truth=pd.to_numeric(setup.features["label"], errors="coerce").to_numpy(dtype=float),
    )


def log_frame(
    pool: Pool,
    n: int,
    *,
    model_name: str,
    version: str,
    version_id: int,
    now: datetime,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """``n`` logged predictions over the hour before ``now`` (sorted by time)."""
    from storage.prediction_log import FEATURE_PREFIX, new_prediction_ids

    picked = rng.integers(0, len(pool.features), n)
    seconds = np.sort(rng.uniform(-3600.0, -1.0, n))
    minutes = np.floor(seconds / 60).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, minutes[1:] != minutes[:-1]])
    counts = np.diff(np.r_[starts, n])
    ids: list[str] = []
    for start, count in zip(starts, counts, strict=True):
        ids += new_prediction_ids(int(count), now + timedelta(seconds=float(seconds[start])))
    now_us = int(pd.Timestamp(now).value // 1000)
    at = pd.to_datetime(now_us + (seconds * 1e6).astype(np.int64), unit="us", utc=True)
    core = pd.DataFrame(
        {
            "prediction_id": ids,
            "model_name": model_name,
            "version": version,
            "version_id": np.full(n, version_id, dtype=np.int64),
            "arm": "champion",
            "routing_key": pool.keys[picked],
            "score": pool.scores[picked],
            "label": pool.labels[picked],
            "latency_ms": rng.lognormal(np.log(4.0), 0.5, n),
            "predicted_at": pd.Series(at, dtype="datetime64[us, UTC]"),
        }
    )
    features = pool.features.iloc[picked].reset_index(drop=True).add_prefix(FEATURE_PREFIX)
    return pd.concat([core, features], axis=1)


def write_rows(
    stk: Stack,
    pool: Pool,
    rows: int,
    *,
    model_name: str,
    version: str,
    version_id: int,
    now: datetime,
    rng: np.random.Generator,
    batch_rows: int = BATCH_ROWS,
) -> int:
    from storage.db import transaction
    from storage.prediction_log import PredictionLog

    log_store = PredictionLog(stk.env["CIPML_PREDICTION_LOG_ROOT"])
    sessions = stk.sessions
    written = 0
    for k, start in enumerate(range(0, rows, batch_rows)):
        n = min(batch_rows, rows - start)
        frame = log_frame(
            pool,
            n,
            model_name=model_name,
            version=version,
            version_id=version_id,
            now=now,
            rng=rng,
        )
        with transaction(sessions) as session:
            written += log_store.write(session, model_name, frame, f"bench-{model_name}-{k}")
    return written


def record_outcomes(
    stk: Stack, pool: Pool, model_name: str, keys: np.ndarray, now: datetime
) -> int:
    """The churn label of these customers, by routing key, observed at ``now``."""
    from storage.db import transaction
    from storage.outcomes import OutcomeIn, OutcomeRepository
    from storage.prediction_log import PredictionLog

    truth = dict(zip(pool.keys, pool.truth, strict=True))
    outcomes = [
        OutcomeIn(None, str(key), float(truth[key]), None, observed_at=now)
        for key in keys
        if np.isfinite(truth[key])
    ]
    log_store = PredictionLog(stk.env["CIPML_PREDICTION_LOG_ROOT"])
    with transaction(stk.sessions) as session:
        OutcomeRepository(session, log_store).record(model_name, outcomes, now)
    return len(outcomes)


# ---------------------------------------------------------------------- jobs rows


def job_rows(stk: Stack, where: Any) -> list[Any]:
    from sqlalchemy import select

    from storage.db import transaction
    from storage.models import Job

    with transaction(stk.sessions) as session:
        rows = list(session.scalars(select(Job).where(where)))
        for row in rows:
            session.expunge(row)
    return rows


def status_counts(stk: Stack, where: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from storage.db import transaction
    from storage.models import Job

    with transaction(stk.sessions) as session:
        found = session.execute(
            select(Job.status, func.count()).where(where).group_by(Job.status)
        ).all()
    return {str(status): int(count) for status, count in found}


def seconds(a: datetime | None, b: datetime | None) -> float:
    if a is None or b is None:
        return float("nan")
    return (b - a).total_seconds()


# ---------------------------------------------------------------------- 1. window


@dataclass
class WindowRun:
    label: str
    client_s: float
    job_s: float
    queue_s: float
    cpu_s: float | None
    peak_rss_mib: float | None
    breakdown: dict[str, float]
    rows: int
    labelled: int
    health: Any
    drifted: Any


@dataclass
class WindowResult:
    rows: int
    write_s: float
    outcomes: int
    runs: list[WindowRun] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)


def window_phase(
    stk: Stack, setup: Setup, pool: Pool, options: Options, watcher: ProgressWatcher
) -> WindowResult:
    from storage.models import Job

    client = stk.client
    log(f"deploy {setup.model_name} {setup.version}")
    client.deploy(setup.model_name, setup.version, reason="monitoring benchmark")
    now = datetime.now(UTC)
    log(f"write {options.rows:,} log rows in batches of {BATCH_ROWS:,}")
    began = time.perf_counter()
    written = write_rows(
        stk,
        pool,
        options.rows,
        model_name=setup.model_name,
        version=setup.version,
        version_id=setup.version_id,
        now=now,
        rng=np.random.default_rng(options.seed),
    )
    write_s = time.perf_counter() - began
    log(f"wrote {written:,} rows in {write_s:.1f} s; record outcomes by key")
    outcomes = 0
    if options.window_outcomes:
        outcomes = record_outcomes(stk, pool, setup.model_name, np.unique(pool.keys), now)
    result = WindowResult(written, write_s, outcomes)
    stk.start_worker("bench-mon-window", "-Q", "monitoring", "-c", "1")
    stk.wait_ready(["bench-mon-window"])
    for label in ("first", "warm"):
        log(f"check {setup.model_name}, window 2h ({label})")
        began = time.perf_counter()
        handle = client.check(setup.model_name, window="2h")
        answer = handle.wait(timeout=options.timeout, progress=False)
        client_s = time.perf_counter() - began
        time.sleep(0.3)  # the last progress message is in
        (row,) = job_rows(stk, Job.id == handle.id)
        stages = watcher.stages(handle.id)
        marks = [("start", row.started_at)]
        marks += [(stage, stages.get(stage)) for stage in STAGES]
        marks.append(("finished", row.finished_at))
        names = {
            "reference": "resolve version + load pipeline",
            "window": "reference: read training rows + score",
            "statistics": "window: read log + join outcomes",
            "done": "statistics + report + store",
            "finished": "finish (result, jobs row)",
        }
        breakdown: dict[str, float] = {}
        for (_, a), (stage, b) in itertools.pairwise(marks):
            breakdown[names[stage]] = seconds(a, b)
        window = answer.get("window") or {}
        run = WindowRun(
            label=label,
            client_s=client_s,
            job_s=seconds(row.started_at, row.finished_at),
            queue_s=seconds(row.created_at, row.started_at),
            cpu_s=row.cpu_s,
            peak_rss_mib=row.peak_rss_bytes / 2**20 if row.peak_rss_bytes else None,
            breakdown=breakdown,
            rows=int(window.get("rows") or 0),
            labelled=int(window.get("labelled_rows") or 0),
            health=(answer.get("health") or {}).get("score"),
            drifted=answer.get("drifted"),
        )
        log(f"  job {run.job_s:.2f} s, submit -> result {run.client_s:.2f} s, rows {run.rows:,}")
        result.runs.append(run)
    stk.stop_worker("bench-mon-window")
    if options.profile or any(run.job_s > WINDOW_TARGET_S for run in result.runs):
        log("profile: the window check in this process")
        result.profile = profile_window(stk, setup, REFERENCE_ROWS)
    return result


def profile_window(stk: Stack, setup: Setup, reference_rows: int) -> list[str]:
    """The window check's work in this process, step by step: the same functions the job
    calls, on the same data (the job's progress reporting and storing left out)."""
    import cProfile
    import io
    import pstats
    import types
    from collections import defaultdict

    from api_client.monitoring_params import CheckParams
    from storage.artifact_store import ArtifactStore
    from storage.db import transaction
    from storage.outcomes import OutcomeRepository
    from storage.prediction_log import PredictionLog
    from workers.monitoring import check_inputs, check_job
    from workers.training.artifact import load_pipeline

    totals: dict[str, float] = defaultdict(float)

    def timed(label: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - began

        return wrapper

    @contextlib.contextmanager
    def session() -> Iterator[Any]:
        with transaction(stk.sessions) as opened:
            yield opened

    store = ArtifactStore(stk.env["CIPML_ARTIFACT_ROOT"])
    log_store = PredictionLog(stk.env["CIPML_PREDICTION_LOG_ROOT"])
    ctx = types.SimpleNamespace(session=session, runtime=types.SimpleNamespace(store=store))
    services = types.SimpleNamespace(
        log_buffer=types.SimpleNamespace(flush=lambda: None), log_store=log_store
    )
    params = CheckParams(model_name=setup.model_name, window_hours=2)
    patches = [
        (check_inputs, "join_outcomes", "window: join_outcomes"),
        (check_inputs, "_labels", "window: labels of the joined rows"),
        (check_job, "prepare_reference", "statistics: prepare_reference (cached in a worker)"),
        (check_job, "data_drift", "statistics: data_drift"),
        (check_job, "prediction_drift", "statistics: prediction_drift"),
        (check_job, "performance_check", "statistics: performance_check"),
        (check_job, "live_quality", "statistics: live_quality"),
        (check_job, "health_score", "statistics: health_score"),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
    window_of = OutcomeRepository.window
    profiler = cProfile.Profile()
    steps: list[tuple[str, float]] = []
    try:
        for module, name, label in patches:
            setattr(module, name, timed(label, getattr(module, name)))
        log_store.read = timed("window: PredictionLog.read", log_store.read)  # type: ignore[method-assign]
        OutcomeRepository.window = timed("window: OutcomeRepository.window", window_of)  # type: ignore[method-assign]
        began = time.perf_counter()
        version = check_inputs.checked_version(ctx, params)  # type: ignore[arg-type]
        pipeline = load_pipeline(store.read_bytes(setup.artifact_sha256), setup.library_versions)
        steps.append(("resolve: version + load pipeline", time.perf_counter() - began))
        began = time.perf_counter()
        reference = check_inputs._read_reference(ctx, version, pipeline, reference_rows)  # type: ignore[arg-type]
        steps.append(("reference: read training rows + score", time.perf_counter() - began))
        profiler.enable()
        began = time.perf_counter()
        current = check_inputs.load_logged_window(
            ctx,  # type: ignore[arg-type]
            services,  # type: ignore[arg-type]
            version,
            params,
            datetime.now(UTC),
        )
        steps.append(("window: load_logged_window (all)", time.perf_counter() - began))
        began = time.perf_counter()
        check = check_job.compute_check(version, reference, current, params, [], [])
        steps.append(("statistics: compute_check (all)", time.perf_counter() - began))
        began = time.perf_counter()
        page = check_job.render_check_report(check).encode()
        steps.append(("render_check_report", time.perf_counter() - began))
        began = time.perf_counter()
        stored = json.dumps(check, default=str)
        steps.append(("json of the stored result", time.perf_counter() - began))
        profiler.disable()
    finally:
        profiler.disable()
        for module, name, fn in originals:
            setattr(module, name, fn)
        OutcomeRepository.window = window_of  # type: ignore[method-assign]
    lines = [
        f"Profile: the window check in this process, {len(current.frame):,} rows (the same "
        "functions on the same data, one thread; no progress reporting or storing); "
        f"HTML report {len(page) / 2**10:,.0f} KiB, stored result JSON "
        f"{len(stored) / 2**10:,.0f} KiB.",
        "",
        "| step | s |",
        "|---|---:|",
    ]
    order = [label for _, _, label in patches]
    order[:0] = ["window: PredictionLog.read", "window: OutcomeRepository.window"]
    for label, value in steps:
        lines.append(f"| {label} | {value:.2f} |")
        prefix = label.split(":")[0]
        for inner in order:
            if inner.startswith(prefix + ":") and inner in totals and "(all)" in label:
                lines.append(f"| &nbsp;&nbsp;{inner} | {totals[inner]:.2f} |")
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(20)
    text = buffer.getvalue().strip()
    lines += ["", "cProfile of window + statistics + report, top 20 by own time:", "", "```"]
    lines += [text[text.find("ncalls") :] if "ncalls" in text else text, "```"]
    return lines


# ---------------------------------------------------------------------- 2. sweep


@dataclass
class SweepResult:
    models: int
    setup_s: dict[str, float]
    total_s: float = float("nan")
    jobs: int = 0
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)
    per_check_s: list[float] = field(default_factory=list)
    queue_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    per_worker: dict[str, int] = field(default_factory=dict)
    first_start_s: float = float("nan")
    rows: list[int] = field(default_factory=list)


def register_copies(stk: Stack, setup: Setup, names: list[str]) -> None:
    """The trained version's row under each name: same artifact, dataset and reference."""
    from sqlalchemy import inspect

    from storage.db import transaction
    from storage.model_versions import ModelVersionRepository
    from storage.models import Job, ModelVersion

    skipped = {"id", "model_name", "job_id", "created_at", "status", "parent_id"}
    with transaction(stk.sessions) as session:
        original = ModelVersionRepository(session).require(setup.version_id)
        columns = [c.key for c in inspect(ModelVersion).column_attrs if c.key not in skipped]
        values = {c: getattr(original, c) for c in columns}
        now = datetime.now(UTC)
        repository = ModelVersionRepository(session)
        for name in names:
            job_id = f"bench-copy-{uuid.uuid4().hex}"
            session.add(
                Job(
                    id=job_id,
                    type="train",
                    params={"copy_of": setup.version_id},
                    status="SUCCEEDED",
                    queue="training",
                    submitted_at=now,
                    started_at=now,
                    finished_at=now,
                )
            )
            session.flush()
            repository.register(ModelVersion(model_name=name, job_id=job_id, **values))


def sweep_phase(stk: Stack, setup: Setup, pool: Pool, options: Options) -> SweepResult:
    from storage.models import Job

    client = stk.client
    prefix = f"bench-mon-{uuid.uuid4().hex[:4]}"
    names = [f"{prefix}-m{i:03d}" for i in range(options.models)]
    times: dict[str, float] = {}
    log(f"register {options.models} copies of {setup.model_name} {setup.version}")
    began = time.perf_counter()
    register_copies(stk, setup, names)
    times["register"] = time.perf_counter() - began
    log("deploy them")
    began = time.perf_counter()
    for name in names:
        client.deploy(name, setup.version, reason="monitoring benchmark")
    times["deploy"] = time.perf_counter() - began
    from storage.db import transaction
    from storage.model_versions import ModelVersionRepository

    with transaction(stk.sessions) as session:
        repository = ModelVersionRepository(session)
        version_ids = {name: repository.latest(name).id for name in names}  # type: ignore[union-attr]
    log(f"write {options.model_rows:,} rows and {options.model_outcomes} outcomes per model")
    began = time.perf_counter()
    rng = np.random.default_rng(options.seed + 1)
    now = datetime.now(UTC)
    unique_keys = np.unique(pool.keys)
    for name in names:
        write_rows(
            stk,
            pool,
            options.model_rows,
            model_name=name,
            version=setup.version,
            version_id=version_ids[name],
            now=now,
            rng=rng,
        )
        if options.model_outcomes:
            keys = rng.choice(unique_keys, min(options.model_outcomes, len(unique_keys)), False)
            record_outcomes(stk, pool, name, keys, now)
    times["log rows + outcomes"] = time.perf_counter() - began
    result = SweepResult(options.models, times)
    workers = ["bench-mon-sweep1", "bench-mon-sweep2"]
    for worker in workers:
        stk.start_worker(worker, "-Q", "monitoring", "-c", "1")
    stk.wait_ready(workers)
    log(f"sweep: {options.models} checks on 2 monitoring workers")
    sent_at = datetime.now(UTC)
    began = time.perf_counter()
    stk.client._app.send_task(
        TaskName.SWEEP_MONITORING.value,
        kwargs={"interval_s": options.interval_s},
        queue="control",
    )
    ours = (Job.type == "check_model") & Job.idempotency_key.like(f"check_model:{prefix}-%")
    last_report = 0.0
    while True:  # one small counting query per poll: the workers need the CPU
        counts = status_counts(stk, ours)
        jobs = sum(counts.values())
        ended = sum(counts.get(s, 0) for s in ("SUCCEEDED", "FAILED", "CANCELLED"))
        elapsed = time.perf_counter() - began
        if elapsed - last_report >= 10:
            log(f"  {elapsed:.0f} s: {jobs} jobs, {ended} ended")
            last_report = elapsed
        if jobs >= options.models and ended == jobs:
            break
        if elapsed > options.timeout:
            log("  timed out")
            break
        time.sleep(POLL_S)
    rows = job_rows(stk, ours)
    result.jobs = len(rows)
    ok = [r for r in rows if r.status == "SUCCEEDED"]
    result.succeeded = len(ok)
    result.failed = [
        f"{r.params.get('model_name')}: {r.status} {r.error_code} {r.error_message}"
        for r in rows
        if r.status != "SUCCEEDED"
    ]
    if ok and len(ok) == options.models:
        result.total_s = seconds(sent_at, max(r.finished_at for r in ok))
    result.first_start_s = seconds(sent_at, min((r.started_at for r in ok), default=None))
    result.per_check_s = [seconds(r.started_at, r.finished_at) for r in ok]
    result.queue_s = [seconds(r.created_at, r.started_at) for r in ok]
    result.cpu_s = [float(r.cpu_s) for r in ok if r.cpu_s is not None]
    for r in ok:
        worker = str(r.worker or "?").split("@")[0]
        result.per_worker[worker] = result.per_worker.get(worker, 0) + 1
        rows_seen = ((r.result or {}).get("window") or {}).get("rows")
        if rows_seen is not None:
            result.rows.append(int(rows_seen))
    log(f"  {result.succeeded}/{options.models} succeeded, total {result.total_s:.1f} s")
    for worker in workers:
        stk.stop_worker(worker)
    return result


# ---------------------------------------------------------------------- report


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def report_lines(
    setup: Setup | None,
    window: WindowResult | None,
    sweep: SweepResult | None,
    options: Options,
) -> tuple[list[str], bool]:
    missed = False
    lines = [
        "| measure | result | target | verdict |",
        "|---|---:|---|---|",
    ]
    if window is not None:
        for run in window.runs:
            met = run.job_s <= WINDOW_TARGET_S
            missed |= not met
            lines.append(
                f"| check of a {run.rows:,}-row window ({run.label}): job wall "
                f"(submit -> result) | {run.job_s:.2f} s ({run.client_s:.2f} s) | "
                f"<= {WINDOW_TARGET_S:g} s | {verdict(met)} |"
            )
    if sweep is not None:
        met = sweep.succeeded == options.models and sweep.total_s <= SWEEP_TARGET_S
        missed |= not met
        rate = sweep.succeeded / sweep.total_s if sweep.total_s == sweep.total_s else 0.0
        lines.append(
            f"| sweep of {options.models} deployments x {options.model_rows:,} rows, 2 "
            f"monitoring workers: send -> last check SUCCEEDED | {sweep.total_s:.1f} s "
            f"({rate:.2f} checks/s) | <= {SWEEP_TARGET_S:g} s | {verdict(met)} |"
        )
    lines.append("")
    if setup is not None:
        lines.append(
            f"Model: {setup.model_name} {setup.version}, family **{setup.family}** (random "
            f"search, 2 trials, 3 folds, no ensemble; trained in {setup.training_s:.0f} s), "
            f"{len(setup.input_schema)} inputs; feature table {len(setup.features):,} rows "
            "(CDNOW churn, cutoff 1997-10-01), the reference: the service default "
            "CIPML_MONITORING_REFERENCE_ROWS (10,000 sampled rows)."
        )
    if window is not None:
        lines += [
            "",
            f"Window: {window.rows:,} log rows written by this process in "
            f"{window.write_s:.1f} s ({len(range(0, window.rows, BATCH_ROWS))} "
            f"PredictionLog.write calls), {window.outcomes:,} outcomes by key"
            + (" (every row labelled)" if window.outcomes else " (no row labelled)")
            + "; one `cipml worker -Q monitoring -c 1`, `client.check(name, "
            'window="2h")` twice.',
            "",
            "| | " + " | ".join(run.label for run in window.runs) + " |",
            "|---|" + "---:|" * len(window.runs),
        ]
        rows_out = [
            ("submit -> result (client), s", [f"{r.client_s:.2f}" for r in window.runs]),
            ("created -> started (queue), s", [f"{r.queue_s:.2f}" for r in window.runs]),
            ("job wall (started -> finished), s", [f"{r.job_s:.2f}" for r in window.runs]),
        ]
        for step in window.runs[0].breakdown:
            rows_out.append(
                (
                    f"  {step}, s",
                    [f"{r.breakdown.get(step, float('nan')):.2f}" for r in window.runs],
                )
            )
        rows_out += [
            ("job CPU, s", [f"{r.cpu_s:.2f}" if r.cpu_s else "-" for r in window.runs]),
            (
                "worker peak RSS, MiB",
                [f"{r.peak_rss_mib:.0f}" if r.peak_rss_mib else "-" for r in window.runs],
            ),
            ("window rows / labelled", [f"{r.rows:,} / {r.labelled:,}" for r in window.runs]),
            (
                "health / drifted",
                [
                    f"{r.health:.1f} / {r.drifted}" if r.health is not None else f"- / {r.drifted}"
                    for r in window.runs
                ],
            ),
        ]
        for label, values in rows_out:
            lines.append(f"| {label} | " + " | ".join(values) + " |")
        lines += [
            "",
            "Breakdown from the job's progress stages (worker timestamps): resolve = from "
            "the job's start to the `reference` stage (the version row, the pipeline), then "
            "each stage to the next; `statistics + report + store` is drift, prediction "
            "drift, performance, live quality, health, the HTML report and its storing.",
        ]
        if window.profile:
            lines += ["", *window.profile]
    if sweep is not None:
        per = np.asarray(sweep.per_check_s) if sweep.per_check_s else np.asarray([np.nan])
        queue = np.asarray(sweep.queue_s) if sweep.queue_s else np.asarray([np.nan])
        cpu = np.asarray(sweep.cpu_s) if sweep.cpu_s else np.asarray([np.nan])
        lines += [
            "",
            f"Sweep: {sweep.models} model names registered as copies of the trained version "
            f"({sweep.setup_s['register']:.1f} s), deployed with `client.deploy` "
            f"({sweep.setup_s['deploy']:.1f} s), {options.model_rows:,} log rows and "
            f"{options.model_outcomes} outcomes by key each "
            f"({sweep.setup_s['log rows + outcomes']:.1f} s); one `sweep_monitoring` task "
            f"(interval_s {options.interval_s:g}) to a `cipml worker -Q control` (4 threads), "
            "checks on two `cipml worker -Q monitoring -c 1`.",
            "",
            "| | value |",
            "|---|---:|",
            f"| check jobs / succeeded | {sweep.jobs} / {sweep.succeeded} |",
            f"| send -> last finished, s | {sweep.total_s:.1f} |",
            f"| send -> first started, s | {sweep.first_start_s:.2f} |",
            f"| checks/s | {sweep.succeeded / sweep.total_s if sweep.total_s > 0 else 0:.2f} |",
            f"| per check (started -> finished) median / p95 / max, s | "
            f"{np.median(per):.3f} / {np.percentile(per, 95):.3f} / {np.max(per):.3f} |",
            f"| queue wait (created -> started) median / max, s | "
            f"{np.median(queue):.1f} / {np.max(queue):.1f} |",
            f"| job CPU median, s | {np.median(cpu):.3f} |",
            "| checks per worker process (host:pid) | "
            + ", ".join(f"{k} {v}" for k, v in sorted(sweep.per_worker.items()))
            + " |",
            f"| window rows per check (min / max) | "
            f"{min(sweep.rows, default=0):,} / {max(sweep.rows, default=0):,} |",
        ]
        if sweep.failed:
            lines += ["", "Not succeeded:", "", *[f"* {item}" for item in sweep.failed[:10]]]
    return lines, missed


# ---------------------------------------------------------------------- main


@contextlib.contextmanager
def _without(names: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    command = "python -m benchmarks.monitoring_service " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    started, load_before = datetime.now(UTC), load_average()
    log(f"load average before: {load_before}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on SIGTERM too
    tmp = Path(tempfile.mkdtemp(prefix="cipml_monitoring_"))
    setup: Setup | None = None
    window: WindowResult | None = None
    sweep: SweepResult | None = None
    status = 0
    watcher = ProgressWatcher(options.redis_url)
    try:
        with stack(options, tmp) as stk:
            stk.start_worker(
                "bench-mon-setup", "-Q", "preprocessing,training,trials,scoring", "-c", "2"
            )
            setup = build_model(stk.service("bench-mon-setup"), "logistic_regression")
            stk.stop_worker("bench-mon-setup")
            pool = scored_pool(stk, setup)
            if not options.skip_sweep:
                sweep = sweep_phase(stk, setup, pool, options)
            if not options.skip_window:
                window = window_phase(stk, setup, pool, options, watcher)
    except Exception as exc:
        import traceback

        log(traceback.format_exc())
        log(f"the run failed: {exc}")
        status = 2
    finally:
        watcher.close()
        if options.keep_logs:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    load_after = load_average()
    versions = package_versions(PACKAGES)
    with _without(THREAD_VARS):  # GNU nproc honours OMP_NUM_THREADS
        machine = describe_machine(ROOT, versions)
    header = report_header(started, command, machine, load_before, load_after)
    lines, missed = report_lines(setup, window, sweep, options)
    report = "\n".join(
        [
            "## Monitoring checks (`benchmarks/monitoring_service.py`)",
            "",
            *header,
            "Threads: OMP/OpenBLAS/MKL = 1 and CIPML_THREADS_PER_PROCESS=1 in every worker; "
            "Redis + PostgreSQL on this machine.",
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

"""Job overhead: trivial jobs through the whole job machinery next to raw Celery, in one run.

Measures, on the same Redis, the same worker concurrency and the same machine:

* latency, sequentially (one in flight): raw ``send -> task started`` and ``send -> result``
  of a no-op Celery task, next to our ``submit -> RUNNING`` (jobs.started_at -
  jobs.submitted_at) and ``submit -> result`` of a ``diagnostics.probe`` job
  ({"seconds": 0, "steps": 0}: no checkpoint), plus where our time goes (the jobs row timestamps);
* throughput: N no-op tasks vs N probe jobs sent as fast as one client can, until the last
  result is published; and the CPU each side burns per task or job.

Raw samples and ours are interleaved one by one, so drift and background load hit both alike.
Results are seen the same way for both: one Redis pattern subscription on the result
backend's ``celery-task-meta-*`` channels, timestamped on arrival (Celery's Redis backend
publishes every stored result). ``JobHandle.result()`` (what a client of ours calls) is
timed as a third series.

The script makes its own PostgreSQL database (``cipml_bench_<pid>``) and flushes its own two
Redis db numbers, starts both workers in their own process groups, and removes all of it at
the end, error or not. Run it from the repository root::

    .venv/bin/python -m benchmarks.job_overhead [--n-latency 300] [--n-throughput 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import celery
import kombu
import psutil
import psycopg
import redis
import sqlalchemy
from celery import Celery
from sqlalchemy.engine import URL, make_url

from api_client import Client
from benchmarks.machine import describe_machine, load_average, report_header
from benchmarks.raw_celery_app import NOOP_TASK, RAW_QUEUE, create_app

ROOT = Path(__file__).resolve().parent.parent
PROBE = "diagnostics.probe"
PROBE_PARAMS: dict[str, Any] = {"seconds": 0, "steps": 0}
RESULT_PREFIX = "celery-task-meta-"
READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
TARGET_ADDED_P50_MS = 3.0
TARGET_THROUGHPUT_SHARE = 0.40
SAMPLE_GAP_S = 0.005  # idle time after each latency sample: lets the worker finish its acks


class BenchmarkError(RuntimeError):
    pass


# ---------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    n_latency: int
    n_throughput: int
    concurrency: int
    warmup: int
    redis_url: str
    ours_db: int
    raw_db: int
    postgres_url: str
    source: Path
    output: Path | None
    keep_logs: bool
    ours_worker_args: tuple[str, ...]

    @property
    def ours_broker(self) -> str:
        return f"{self.redis_url.rstrip('/')}/{self.ours_db}"

    @property
    def raw_broker(self) -> str:
        return f"{self.redis_url.rstrip('/')}/{self.raw_db}"


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.job_overhead",
        description="Overhead of the cip-ml job machinery against raw Celery, in one run.",
    )
    parser.add_argument(
        "--n-latency",
        type=int,
        default=300,
        help="sequential samples per latency series (default 300)",
    )
    parser.add_argument(
        "--n-throughput",
        type=int,
        default=2000,
        help="tasks / jobs per throughput burst (default 2000)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, help="worker pool processes, both workers (default 2)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=40,
        help="warm-up tasks / jobs per worker, half one by one (default 40)",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379",
        help="Redis server, without db number (default redis://127.0.0.1:6379)",
    )
    parser.add_argument(
        "--ours-db",
        type=int,
        default=14,
        help="Redis db for the job machinery; flushed (default 14)",
    )
    parser.add_argument(
        "--raw-db", type=int, default=15, help="Redis db for raw Celery; flushed (default 15)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="service source tree the job worker imports (default: this "
        "checkout; point at a scratch copy to try a change)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="also write the markdown report to this file"
    )
    parser.add_argument(
        "--ours-worker-args",
        default="",
        help="extra arguments for `cipml worker`, e.g. --ours-worker-args='--control-threads 0'",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the temporary folder with the worker logs"
    )
    args = parser.parse_args(argv)
    for name in ("n_latency", "n_throughput", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.ours_db == args.raw_db:
        parser.error("--ours-db and --raw-db must differ")
    return Options(
        n_latency=args.n_latency,
        n_throughput=args.n_throughput,
        concurrency=args.concurrency,
        warmup=max(0, args.warmup),
        redis_url=args.redis_url,
        ours_db=args.ours_db,
        raw_db=args.raw_db,
        postgres_url=args.postgres_url,
        source=args.source.resolve(),
        output=args.output,
        keep_logs=args.keep_logs,
        ours_worker_args=tuple(shlex.split(args.ours_worker_args)),
    )


# ---------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50(values: Sequence[float]) -> float:
    return percentile(values, 50)


def p99(values: Sequence[float]) -> float:
    return percentile(values, 99)


def ms(seconds: float) -> float:
    return seconds * 1000.0


# ---------------------------------------------------------------------- machine


def machine_info(options: Options) -> dict[str, str]:
    """The machine, the client libraries, both servers and the ``--source`` git state."""
    redis_version = redis.Redis.from_url(options.ours_broker).info("server")["redis_version"]
    with psycopg.connect(_conninfo(make_url(options.postgres_url))) as conn:
        pg_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    versions = {
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis-py": redis.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "redis server": redis_version,
        "postgresql": pg_version,
    }
    return describe_machine(options.source, versions)


# ---------------------------------------------------------------------- services


def _conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[URL]:
    """A new PostgreSQL database ``cipml_bench_<pid>``, dropped on the way out."""
    admin = make_url(admin_url)
    name = f"cipml_bench_{os.getpid()}"
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'cipml_bench_%'")
        for (stale,) in rows.fetchall():
            pid = stale.removeprefix("cipml_bench_")
            if stale == name or (pid.isdigit() and not psutil.pid_exists(int(pid))):
                # ours, or left by a run that was killed before it could clean up
                conn.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name)
    finally:
        with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def flushed_redis_dbs(urls: Sequence[str]) -> Iterator[None]:
    clients = [redis.Redis.from_url(url) for url in urls]
    for client in clients:
        client.flushdb()
    try:
        yield
    finally:
        for client in clients:
            with contextlib.suppress(redis.RedisError):
                client.flushdb()
            client.close()


@dataclass
class WorkerProcess:
    """A worker started in its own process group, so that stopping it stops its pool too."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tree(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def layout(self) -> str:
        """The process tree, identical command lines counted: what `-c N` really started."""
        counts: dict[str, int] = {}
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                argv = proc.cmdline()
                line = " ".join([Path(argv[0]).name, *argv[1:]]) if argv else "?"
                threads = proc.num_threads()
                key = f"`{line}` ({threads} threads)"
                counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{n} x {key}" for key, n in counts.items())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM to the group (a warm shutdown), then SIGKILL to whatever is left of it and
        of the process tree (a child that made its own session is not in the group)."""
        pgid = self.proc.pid
        tree = self.tree()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil checks the pid was not reused
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def start_worker(
    name: str, argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path
) -> WorkerProcess:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(name=name, proc=proc, log_path=log_path)


def log_problems(worker: WorkerProcess) -> dict[str, int]:
    """Count of WARNING/ERROR/CRITICAL lines in a worker log (JSON lines or Celery text)."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in worker.log_path.read_text(errors="replace").splitlines():
            level = None
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    level = json.loads(line).get("level")
            else:
                match = re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)
                level = match.group(1) if match else None
            if level in ("WARNING", "ERROR", "CRITICAL"):
                counts[level] = counts.get(level, 0) + 1
    return counts


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class Arrival:
    at: float  # wall clock when the published result reached us
    status: str
    result: Any


class ResultWatcher:
    """Every result the Redis result backend publishes (SET + PUBLISH on
    ``celery-task-meta-<id>``), timestamped on arrival by one pattern subscription.

    Pub/sub channels are not scoped by db number, so one subscription sees both systems;
    results of other ids (other users of the server) are kept but never asked for. A waiter
    is woken once, when the last result it waits for arrives (not on every arrival), so
    watching a burst costs the client O(1) per result.
    """

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url)
        self._pubsub = self._client.pubsub()
        self._pubsub.psubscribe(f"{RESULT_PREFIX}*")
        deadline = time.monotonic() + 10
        while True:  # the subscription is live before anything is sent
            message = self._pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "psubscribe":
                break
            if time.monotonic() > deadline:
                raise BenchmarkError("could not subscribe to the result channels")
        self._ready: dict[str, Arrival] = {}
        self._pending: set[str] = set()
        self.health_check: Callable[[], None] | None = None  # run about once a second
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="result-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message is None or message["type"] != "pmessage":
                continue
            at = time.time()
            try:
                meta = json.loads(message["data"])
            except ValueError:
                continue
            if not isinstance(meta, dict) or meta.get("status") not in READY_STATES:
                continue
            task_id = str(meta.get("task_id"))
            with self._cond:
                self._ready[task_id] = Arrival(at, meta["status"], meta.get("result"))
                if task_id in self._pending:
                    self._pending.discard(task_id)
                    if not self._pending:
                        self._cond.notify_all()

    def wait(self, task_id: str, timeout: float) -> Arrival:
        return self.wait_all([task_id], timeout)[0]

    def wait_all(self, task_ids: Sequence[str], timeout: float) -> list[Arrival]:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._pending = {task_id for task_id in task_ids if task_id not in self._ready}
            try:
                while self._pending:
                    if self.health_check is not None:
                        self.health_check()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise BenchmarkError(
                            f"{len(self._pending)} of {len(task_ids)} results did not arrive "
                            f"within {timeout:g}s"
                        )
                    self._cond.wait(min(left, 1.0))
            finally:
                self._pending = set()
            return [self._ready[task_id] for task_id in task_ids]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pubsub.close()
        self._client.close()


# ---------------------------------------------------------------------- the two systems


@dataclass(frozen=True)
class Sent:
    task_id: str
    t0: float  # before the send / submit call
    t1: float  # after it returned


class RawSystem:
    def __init__(self, broker_url: str) -> None:
        self.app: Celery = create_app(broker_url)

    def send(self) -> Sent:
        task_id = uuid.uuid4().hex
        t0 = time.time()
        self.app.send_task(NOOP_TASK, task_id=task_id, queue=RAW_QUEUE)
        return Sent(task_id, t0, time.time())

    def close(self) -> None:
        self.app.close()


class OurSystem:
    def __init__(self, broker_url: str) -> None:
        self.client = Client(broker_url)

    def send(self) -> Sent:
        job_id = uuid.uuid4().hex
        t0 = time.time()
        self.client.submit(PROBE, dict(PROBE_PARAMS), job_id=job_id)
        return Sent(job_id, t0, time.time())

    def round_trip_via_handle(self, timeout: float) -> tuple[Sent, float]:
        """Submit and wait the way our clients do: ``JobHandle.result()``."""
        job_id = uuid.uuid4().hex
        t0 = time.time()
        handle = self.client.submit(PROBE, dict(PROBE_PARAMS), job_id=job_id)
        t1 = time.time()
        handle.result(timeout=timeout)
        return Sent(job_id, t0, t1), time.time()

    def close(self) -> None:
        self.client.close()


def expect_success(system: str, arrivals: Sequence[Arrival]) -> None:
    for arrival in arrivals:
        ok = arrival.status == "SUCCESS" and (
            system == "raw"
            or (isinstance(arrival.result, dict) and arrival.result.get("status") == "SUCCEEDED")
        )
        if not ok:
            raise BenchmarkError(f"{system}: a task or job did not succeed: {arrival}")


# ---------------------------------------------------------------------- CPU accounting


_PG_BACKEND = re.compile(r"postgres: (?:\S+: )?\S+ (\S+) \S+\(\d+\)")


class CpuMeter:
    """CPU seconds used by the client (this process), the worker process tree, Redis and
    PostgreSQL (its auxiliary processes and the backends of our database) over a phase."""

    def __init__(self, worker: WorkerProcess, database: str) -> None:
        self.worker = worker
        self.database = database
        self._start: dict[str, dict[int, float]] = {}

    def _processes(self) -> dict[str, list[psutil.Process]]:
        groups: dict[str, list[psutil.Process]] = {"client": [psutil.Process()]}
        tree = self.worker.tree()
        for proc in tree:
            groups.setdefault(_worker_role(proc, tree[0]), []).append(proc)
        groups["redis"], groups["postgres"] = [], []
        for proc in psutil.process_iter(["name", "cmdline"]):
            name = proc.info["name"] or ""
            if name.startswith("redis-server"):
                groups["redis"].append(proc)
            elif name == "postgres":
                title = " ".join(proc.info["cmdline"] or [])
                match = _PG_BACKEND.search(title)
                if match is None or match.group(1) == self.database:
                    groups["postgres"].append(proc)
        return groups

    def _snapshot(self) -> dict[str, dict[int, float]]:
        snapshot: dict[str, dict[int, float]] = {}
        for group, procs in self._processes().items():
            snapshot[group] = {}
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    snapshot[group][proc.pid] = times.user + times.system
        return snapshot

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        used: dict[str, float] = {}
        for group, pids in end.items():
            before = self._start.get(group, {})
            used[group] = sum(cpu - before.get(pid, 0.0) for pid, cpu in pids.items())
        return used


def _worker_role(proc: psutil.Process, root: psutil.Process) -> str:
    """The main process, its forked pool, or another worker it started (e.g. the separate
    control worker of `cipml worker`), told apart by command line."""
    if proc.pid == root.pid:
        return "worker: main process"
    try:
        argv, root_argv = proc.cmdline(), root.cmdline()
    except psutil.Error:
        return "worker: other"
    if argv == root_argv:
        return "worker: pool processes"
    queues = argv[argv.index("-Q") + 1] if "-Q" in argv[:-1] else "?"
    return f"worker: separate `-Q {queues}` worker"


# ---------------------------------------------------------------------- server counters


def redis_commands(redis_url: str) -> int:
    """Commands the Redis server has processed (all clients, all dbs)."""
    with redis.Redis.from_url(redis_url) as client:
        return int(client.info("stats")["total_commands_processed"])


def pg_counters(admin_url: str, database: str) -> tuple[int, int]:
    """(committed transactions, sessions opened) of ``database``; PostgreSQL flushes these
    statistics lazily (idle backends within 10 s)."""
    with psycopg.connect(_conninfo(make_url(admin_url))) as conn:
        row = conn.execute(
            "SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


PG_STATS_FLUSH_S = 11.0


# ---------------------------------------------------------------------- measurements


@dataclass
class LatencyRun:
    raw: list[tuple[Sent, Arrival]] = field(default_factory=list)
    ours: list[tuple[Sent, Arrival]] = field(default_factory=list)
    ours_handle: list[tuple[Sent, float]] = field(default_factory=list)


@dataclass
class ThroughputRun:
    n: int
    first_send: float
    last_sent: float
    last_result: float
    cpu: dict[str, float]
    sent: list[Sent]
    redis_commands: int
    pg_commits: int = 0
    pg_sessions: int = 0

    @property
    def wall(self) -> float:
        return self.last_result - self.first_send

    @property
    def per_second(self) -> float:
        return self.n / self.wall

    @property
    def send_rate(self) -> float:
        return self.n / max(self.last_sent - self.first_send, 1e-9)


def warm_up(send: Callable[[], Sent], watcher: ResultWatcher, n: int, label: str) -> None:
    """First one with a long timeout (worker start), then half one by one, half at once."""
    first = send()
    expect_success(label, [watcher.wait(first.task_id, timeout=120)])
    for _ in range(n // 2):
        expect_success(label, [watcher.wait(send().task_id, timeout=30)])
    burst = [send().task_id for _ in range(n - n // 2)]
    expect_success(label, watcher.wait_all(burst, timeout=60))


def measure_latency(
    raw: RawSystem, ours: OurSystem, watcher: ResultWatcher, n: int, progress: Callable[[str], None]
) -> LatencyRun:
    run = LatencyRun()
    for i in range(n):
        sent = raw.send()
        arrival = watcher.wait(sent.task_id, timeout=30)
        expect_success("raw", [arrival])
        run.raw.append((sent, arrival))
        time.sleep(SAMPLE_GAP_S)

        sent = ours.send()
        arrival = watcher.wait(sent.task_id, timeout=30)
        expect_success("ours", [arrival])
        run.ours.append((sent, arrival))
        time.sleep(SAMPLE_GAP_S)

        run.ours_handle.append(ours.round_trip_via_handle(timeout=30))
        time.sleep(SAMPLE_GAP_S)
        if (i + 1) % 100 == 0:
            progress(f"  latency: {i + 1}/{n}")
    return run


def measure_throughput(
    send: Callable[[], Sent],
    watcher: ResultWatcher,
    n: int,
    meter: CpuMeter,
    label: str,
    redis_url: str,
) -> ThroughputRun:
    commands = redis_commands(redis_url)
    meter.start()
    sent: list[Sent] = []
    for _ in range(n):
        sent.append(send())
    last_sent = time.time()
    arrivals = watcher.wait_all([s.task_id for s in sent], timeout=60 + n / 10)
    cpu = meter.stop()
    commands = redis_commands(redis_url) - commands
    expect_success(label, arrivals)
    return ThroughputRun(
        n=n,
        first_send=sent[0].t0,
        last_sent=last_sent,
        last_result=max(a.at for a in arrivals),
        cpu=cpu,
        sent=sent,
        redis_commands=commands,
    )


@dataclass(frozen=True)
class JobTimes:
    submitted: float
    created: float
    dispatched: float
    started: float
    finished: float


def job_times(database: URL, job_ids: Sequence[str]) -> dict[str, JobTimes]:
    query = (
        "SELECT id, status, submitted_at, created_at, dispatched_at, started_at, "
        "finished_at FROM jobs WHERE id = ANY(%s)"
    )
    times: dict[str, JobTimes] = {}
    with psycopg.connect(_conninfo(database)) as conn:
        for job_id, status, *stamps in conn.execute(query, (list(job_ids),)):
            if status != "SUCCEEDED" or any(s is None for s in stamps):
                raise BenchmarkError(f"job {job_id} ended {status} or lacks a timestamp")
            times[job_id] = JobTimes(*(s.timestamp() for s in stamps))
    if len(times) != len(job_ids):
        raise BenchmarkError(f"{len(job_ids) - len(times)} jobs have no row")
    return times


# ---------------------------------------------------------------------- report


@dataclass(frozen=True)
class Summary:
    raw_start: list[float]
    raw_round_trip: list[float]
    raw_send_call: list[float]
    raw_start_to_result: list[float]
    ours_running: list[float]
    ours_round_trip: list[float]
    ours_handle_round_trip: list[float]
    ours_submit_call: list[float]
    ours_running_from_call: list[float]
    ours_handle_running: list[float]
    segments: dict[str, list[float]]
    raw_tp: ThroughputRun
    ours_tp: ThroughputRun
    ours_tp_server_rate: float


def summarise(
    latency: LatencyRun, raw_tp: ThroughputRun, ours_tp: ThroughputRun, database: URL
) -> Summary:
    rows = job_times(
        database, [s.task_id for s, _ in latency.ours] + [s.task_id for s, _ in latency.ours_handle]
    )
    segments: dict[str, list[float]] = {
        "client: submit() call until submitted_at": [],
        "submitted -> created (client send, broker hop, control task, INSERT)": [],
        "created -> dispatched (rest of the control transaction)": [],
        "dispatched -> started (commit, send, broker hop, claim SELECT FOR UPDATE)": [],
        "started -> finished (claim commit, handler, progress write, finish)": [],
        "finished -> result published and seen (commit, store_result)": [],
    }
    for sent, arrival in latency.ours:
        t = rows[sent.task_id]
        values = (
            t.submitted - sent.t0,
            t.created - t.submitted,
            t.dispatched - t.created,
            t.started - t.dispatched,
            t.finished - t.started,
            arrival.at - t.finished,
        )
        for key, value in zip(segments, values, strict=True):
            segments[key].append(ms(value))
    tp_rows = job_times(database, [s.task_id for s in ours_tp.sent])
    first = min(t.submitted for t in tp_rows.values())
    last = max(t.finished for t in tp_rows.values())
    return Summary(
        raw_start=[ms(float(a.result) - s.t0) for s, a in latency.raw],
        raw_round_trip=[ms(a.at - s.t0) for s, a in latency.raw],
        raw_send_call=[ms(s.t1 - s.t0) for s, _ in latency.raw],
        raw_start_to_result=[ms(a.at - float(a.result)) for s, a in latency.raw],
        ours_running=[
            ms(rows[s.task_id].started - rows[s.task_id].submitted) for s, _ in latency.ours
        ],
        ours_round_trip=[ms(a.at - s.t0) for s, a in latency.ours],
        ours_handle_round_trip=[ms(done - s.t0) for s, done in latency.ours_handle],
        ours_submit_call=[ms(s.t1 - s.t0) for s, _ in latency.ours],
        ours_running_from_call=[ms(rows[s.task_id].started - s.t0) for s, _ in latency.ours],
        ours_handle_running=[
            ms(rows[s.task_id].started - rows[s.task_id].submitted) for s, _ in latency.ours_handle
        ],
        segments=segments,
        raw_tp=raw_tp,
        ours_tp=ours_tp,
        ours_tp_server_rate=len(tp_rows) / (last - first),
    )


def _f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


def render(
    summary: Summary,
    options: Options,
    machine: Mapping[str, str],
    command: str,
    started: datetime,
    loads: tuple[str, str],
    worker_logs: Mapping[str, str],
    layouts: Mapping[str, str],
) -> str:
    s = summary
    added_p50 = p50(s.ours_running) - p50(s.raw_start)
    added_rt_p50 = p50(s.ours_round_trip) - p50(s.raw_round_trip)
    share = s.ours_tp.per_second / s.raw_tp.per_second
    lines = [
        *report_header(started, command, machine, *loads),
        f"Both workers: `-c {options.concurrency}` prefork, same Redis server (db "
        f"{options.ours_db} ours, db {options.raw_db} raw); job: `{PROBE}` "
        f"`{json.dumps(PROBE_PARAMS)}`; {options.n_latency} sequential samples per latency "
        f"series (raw and ours interleaved), {options.n_throughput} per throughput burst.",
        "",
        *(f"Processes, {name}: {layout}" for name, layout in layouts.items()),
        "",
        "| metric | raw Celery | cip-ml job | added / share |",
        "|---|---:|---:|---:|",
        f"| submit → running, p50 (ms) | {_f(p50(s.raw_start))} | {_f(p50(s.ours_running))} "
        f"| +{_f(added_p50)} |",
        f"| submit → running, p99 (ms) | {_f(p99(s.raw_start))} | {_f(p99(s.ours_running))} "
        f"| +{_f(p99(s.ours_running) - p99(s.raw_start))} |",
        f"| submit → result, p50 (ms) | {_f(p50(s.raw_round_trip))} "
        f"| {_f(p50(s.ours_round_trip))} | +{_f(added_rt_p50)} |",
        f"| submit → result, p99 (ms) | {_f(p99(s.raw_round_trip))} "
        f"| {_f(p99(s.ours_round_trip))} "
        f"| +{_f(p99(s.ours_round_trip) - p99(s.raw_round_trip))} |",
        f"| submit → `JobHandle.result()` returns, p50 / p99 (ms) | - "
        f"| {_f(p50(s.ours_handle_round_trip))} / {_f(p99(s.ours_handle_round_trip))} | |",
        f"| send / submit call itself, p50 (ms) | {_f(p50(s.raw_send_call))} "
        f"| {_f(p50(s.ours_submit_call))} "
        f"| +{_f(p50(s.ours_submit_call) - p50(s.raw_send_call))} |",
        f"| throughput, {options.n_throughput} sent at once (per s) "
        f"| {_f(s.raw_tp.per_second, 0)} | {_f(s.ours_tp.per_second, 0)} | {share:.0%} |",
        "",
        f"* Target added submit → running p50 ≤ {TARGET_ADDED_P50_MS:g} ms: "
        f"{_verdict(added_p50 <= TARGET_ADDED_P50_MS)} (+{_f(added_p50)} ms; on submit → "
        f"result the machinery adds +{_f(added_rt_p50)} ms).",
        f"* Target throughput ≥ {TARGET_THROUGHPUT_SHARE:.0%} of raw: "
        f"{_verdict(share >= TARGET_THROUGHPUT_SHARE)} ({share:.0%}).",
        "",
        "Definitions: raw *running* = the time the no-op task body started (it returns "
        "`time.time()`) minus the time before `send_task()`; ours = `jobs.started_at - "
        "jobs.submitted_at` (submitted_at is set inside `Client.submit()`, after validation; "
        f"from before the call: p50 {_f(p50(s.ours_running_from_call))} ms). *Result* = the "
        "result backend's publish of the task result (raw) / job summary (ours) seen by one "
        "Redis subscriber. `JobHandle.result()` was timed as a separate interleaved series "
        f"(its own submit → running p50 {_f(p50(s.ours_handle_running))} ms).",
        "",
        "Where our submit → result time goes (latency series, from the jobs row timestamps):",
        "",
        "| segment | p50 (ms) | p99 (ms) |",
        "|---|---:|---:|",
    ]
    for name, values in s.segments.items():
        lines.append(f"| {name} | {_f(p50(values))} | {_f(p99(values))} |")
    lines += [
        f"| raw, for comparison: send → started | {_f(p50(s.raw_start))} "
        f"| {_f(p99(s.raw_start))} |",
        f"| raw, for comparison: started → result seen | {_f(p50(s.raw_start_to_result))} "
        f"| {_f(p99(s.raw_start_to_result))} |",
        "",
        "Throughput bursts (client-observed: first send → last result seen):",
        "",
        "| | raw Celery | cip-ml job |",
        "|---|---:|---:|",
        f"| wall time (s) | {_f(s.raw_tp.wall)} | {_f(s.ours_tp.wall)} |",
        f"| per second | {_f(s.raw_tp.per_second, 0)} | {_f(s.ours_tp.per_second, 0)} |",
        f"| client send rate (per s) | {_f(s.raw_tp.send_rate, 0)} "
        f"| {_f(s.ours_tp.send_rate, 0)} |",
        f"| server-side rate (first submitted_at → last finished_at) | - "
        f"| {_f(s.ours_tp_server_rate, 0)} |",
    ]
    groups = list(dict.fromkeys([*s.raw_tp.cpu, *s.ours_tp.cpu]))
    for group in sorted(
        groups, key=lambda g: ("client", "worker", "redis", "postgres").index(g.split(":")[0])
    ):
        raw_cpu = s.raw_tp.cpu.get(group, 0.0) / s.raw_tp.n
        our_cpu = s.ours_tp.cpu.get(group, 0.0) / s.ours_tp.n
        lines.append(f"| CPU ms per task / job: {group} | {_f(ms(raw_cpu))} | {_f(ms(our_cpu))} |")
    raw_total = sum(s.raw_tp.cpu.values()) / s.raw_tp.n
    our_total = sum(s.ours_tp.cpu.values()) / s.ours_tp.n
    lines += [
        f"| CPU ms per task / job: total | {_f(ms(raw_total))} | {_f(ms(our_total))} |",
        f"| Redis commands per task / job (server-wide count) "
        f"| {_f(s.raw_tp.redis_commands / s.raw_tp.n, 1)} "
        f"| {_f(s.ours_tp.redis_commands / s.ours_tp.n, 1)} |",
        f"| PostgreSQL transactions committed per job | 0 "
        f"| {_f(s.ours_tp.pg_commits / s.ours_tp.n, 1)} |",
        f"| PostgreSQL sessions opened during the burst | 0 | {s.ours_tp.pg_sessions} |",
        "",
        "Worker logs: " + "; ".join(f"{name}: {text}" for name, text in worker_logs.items()),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- main


def _interrupt(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(options: Options, command: str) -> str:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = datetime.now(UTC)
    machine = machine_info(options)
    load_before = load_average()
    python = Path(sys.executable)
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="cipml_bench_"))
        if not options.keep_logs:
            stack.callback(_rmtree, tmp)
        database = stack.enter_context(scratch_database(options.postgres_url))
        stack.enter_context(flushed_redis_dbs([options.ours_broker, options.raw_broker]))
        env = {key: value for key, value in os.environ.items() if not key.startswith("CIPML_")}
        ours_env = {
            **env,
            "CIPML_BROKER_URL": options.ours_broker,
            "CIPML_DATABASE_URL": database.render_as_string(hide_password=False),
            "CIPML_ARTIFACT_ROOT": str(tmp / "artifacts"),
            "CIPML_HOME": str(tmp / "home"),
            "CIPML_LOG_LEVEL": "WARNING",
        }
        if options.source != ROOT:
            ours_env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(options.source), env.get("PYTHONPATH", "")) if p
            )
        say(f"database {database.database}, logs in {tmp}")
        upgrade = subprocess.run(
            [str(python.parent / "cipml"), "db", "upgrade"],
            env=ours_env,
            cwd=options.source,
            capture_output=True,
            text=True,
            check=False,
        )
        if upgrade.returncode != 0:
            raise BenchmarkError(f"cipml db upgrade failed:\n{upgrade.stderr}")
        c = str(options.concurrency)
        ours_worker = start_worker(
            "ours",
            [
                str(python.parent / "cipml"),
                "worker",
                "-c",
                c,
                "-n",
                "bench-ours@%h",
                *options.ours_worker_args,
            ],
            ours_env,
            options.source,
            tmp / "ours-worker.log",
        )
        stack.callback(ours_worker.stop)
        raw_worker = start_worker(
            "raw",
            [
                str(python),
                "-m",
                "celery",
                "-A",
                "benchmarks.raw_celery_app",
                "worker",
                "-c",
                c,
                "-n",
                "bench-raw@%h",
                "-Q",
                RAW_QUEUE,
                "--loglevel",
                "WARNING",
            ],
            {**env, "BENCH_RAW_BROKER_URL": options.raw_broker},
            ROOT,
            tmp / "raw-worker.log",
        )
        stack.callback(raw_worker.stop)
        workers = (ours_worker, raw_worker)

        watcher = ResultWatcher(options.ours_broker)
        stack.callback(watcher.close)
        raw = RawSystem(options.raw_broker)
        stack.callback(raw.close)
        ours = OurSystem(options.ours_broker)
        stack.callback(ours.close)

        def check_workers() -> None:
            for worker in workers:
                if not worker.alive():
                    code = worker.proc.returncode
                    raise BenchmarkError(f"the {worker.name} worker exited with code {code}")

        watcher.health_check = check_workers
        try:
            say("warming up")
            warm_up(raw.send, watcher, options.warmup, "raw")
            warm_up(ours.send, watcher, options.warmup, "ours")
            check_workers()
            layouts = {w.name: w.layout() for w in workers}
            time.sleep(1.0)
            say(f"latency: {options.n_latency} samples per series")
            latency = measure_latency(raw, ours, watcher, options.n_latency, say)
            check_workers()
            time.sleep(1.0)
            say(f"throughput: raw, {options.n_throughput} tasks")
            raw_tp = measure_throughput(
                raw.send,
                watcher,
                options.n_throughput,
                CpuMeter(raw_worker, str(database.database)),
                "raw",
                options.redis_url,
            )
            time.sleep(PG_STATS_FLUSH_S)  # also lets the statistics of earlier jobs settle
            say(f"throughput: ours, {options.n_throughput} jobs")
            pg_before = pg_counters(options.postgres_url, str(database.database))
            ours_tp = measure_throughput(
                ours.send,
                watcher,
                options.n_throughput,
                CpuMeter(ours_worker, str(database.database)),
                "ours",
                options.redis_url,
            )
            check_workers()
            time.sleep(PG_STATS_FLUSH_S)
            pg_after = pg_counters(options.postgres_url, str(database.database))
            ours_tp.pg_commits = pg_after[0] - pg_before[0]
            ours_tp.pg_sessions = pg_after[1] - pg_before[1]
        except BenchmarkError as exc:
            tails = "\n".join(f"--- {w.name} worker log tail:\n{w.log_tail()}" for w in workers)
            raise BenchmarkError(f"{exc}\n{tails}") from None
        summary = summarise(latency, raw_tp, ours_tp, database)
        logs = {
            w.name: ", ".join(f"{n} {k}" for k, n in sorted(log_problems(w).items()))
            or "no warnings"
            for w in workers
        }
    return render(
        summary, options, machine, command, started, (load_before, load_average()), logs, layouts
    )


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    command = shlex.join(
        ["python", "-m", "benchmarks.job_overhead", *(sys.argv[1:] if argv is None else argv)]
    )
    try:
        report = run(options, command)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; workers stopped, database dropped", file=sys.stderr)
        return 130
    print(report)
    if options.output is not None:
        options.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

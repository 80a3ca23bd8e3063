"""Distributed training: the same study with 1 and with 2 trial workers through the service,
next to Optuna alone on the same objective, in one run.

The study: the CDNOW churn features (``workers.demo.churn_features_params``: 23,570 customers
x ~108 columns), family ``hist_gradient_boosting`` only, strategy ``bayesian`` (TPE), 3-fold
stratified CV scored by ROC AUC, holdout 0.2, seed 0, ``--trials`` trials (default 40).

On Redis and a fresh PostgreSQL database ``cipml_bench_<pid>`` (``cipml db upgrade`` first) it
starts ``cipml worker -Q control,preprocessing,training -c 1`` (ingest, build_features, the
train coordinator and finalize), ingests ``data/cdnow_transactions.parquet`` and builds the
churn features (untimed), exports the feature table from the artifact store, and then:

* **Optuna alone**, in processes of its own (``multiprocessing`` spawn), on the same
  objective (``workers.training.objective.make_objective`` on ``prepare_binary``'s split,
  ``make_sampler`` with the runners' seeds ``seed + 7919 * (part + 1)``), each process timed
  inside around ``study.optimize(objective, n_trials=k)`` once every process has its data:

  - in memory, 1 process, threads capped at 1 (the cap the service gives, see below);
  - PostgreSQL (schema ``optuna_alone``, a new study per run), 1 process: default threads,
    capped at 2 (all cores) and capped at 1;
  - PostgreSQL, 2 processes x trials/2, each capped at 1 thread (threadpoolctl): its own
    TPE study, and (unless ``--no-fixed``) the 1-process cap-1 run's configurations,
    enqueued in order (``study.enqueue_trial``), so the same work is timed on 1 and 2
    processes (the TPE studies of 1 and 2 processes sample different configurations,
    whose cost differs several-fold);
  - optionally (``--oversubscribed-trials``, default 4; 0 skips) 2 processes with default
    threads for a few trials only: the OpenMP oversubscription the thread caps avoid.

* **Through the service**: ``train`` jobs with ``parallelism`` 1 and 2, each with exactly
  that many fresh ``cipml worker -Q trials -c 1`` processes (separate workers, started and
  pinged before the submit, stopped after the job), after an untimed 2-trial warm-up job;
  then (unless ``--no-fixed``) parallelism 2 on the P=1 run's configurations: the study
  (name = job id) is created before the submit with them enqueued, the coordinator loads
  it and the runners' ``optimize()`` takes them in order. The search phase is the
  coordinator's ``fanned_out`` event to the last trial claim's ``ended_at``
  (``trial_claims``); also the whole job (before ``submit()`` → result seen on Redis) and
  finalize. Checked: exactly n COMPLETE trials in the Optuna study (study name = job id)
  and n ``done`` claims.

Per-trial overhead of the service: per claim, (``ended_at - claimed_at``) minus the Optuna
trial's own duration (``datetime_complete - datetime_start``), and the gap between a
runner's consecutive claims; next to Optuna's own per-trial cost alone (wall of
``optimize`` minus time inside the objective), in memory and on PostgreSQL.

The workers run with ``TMPDIR`` set to the run's temporary folder, so the compute-process
registry behind ``CIPML_THREADS_PER_PROCESS=0`` (``workers/training/threads.py``) counts
this run's pool processes only, not those of other cip-ml workers on the machine.

It cleans up after itself, on error and on Ctrl-C too: the workers' process groups are
stopped, child processes ended, the database dropped and the Redis db flushed. Run from the
repository root::

    .venv/bin/python -m benchmarks.training_scaling [--trials 40] [--output FILE]

A 40-trial single-process run takes about 10 minutes here (a trial is ≈ 15 s of one core),
so a full run takes well over an hour. Before each run it waits (``--quiet-wait``) until the
machine is idle (``--quiet-cores``), and it reports the CPU other processes used during
each run: on 2 cores, foreign load changes everything measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import celery
import optuna
import pandas as pd
import psutil
import psycopg
import redis
from sqlalchemy.engine import URL, make_url
from threadpoolctl import threadpool_info, threadpool_limits

from api_client import Client
from benchmarks.job_overhead import (
    BenchmarkError,
    ResultWatcher,
    WorkerProcess,
    _conninfo,
    flushed_redis_dbs,
    log_problems,
    percentile,
    scratch_database,
    start_worker,
)
from benchmarks.machine import describe_machine, load_average, package_versions, report_header
from storage.artifact_store import ArtifactStore
from workers.demo import BUNDLED, churn_features_params
from workers.settings import Settings
from workers.training.inputs import prepare_binary
from workers.training.objective import Strategy, make_objective, make_pruner, make_sampler

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["hist_gradient_boosting"]
STRATEGY: Strategy = "bayesian"
METRIC = "roc_auc"
FOLDS = 3
HOLDOUT = 0.2
SEED = 0
TARGET = "label"
EXCLUDE = ["customer_id", "cutoff"]
RUNNER_SEED_STEP = 7919  # workers/training/runner.py: seed + 7919 * (part + 1) + generation
TARGET_RATIO = 1.8
ALONE_SCHEMA = "optuna_alone"
COORDINATOR_NAME = "bench-train"
TRIALS_NAME = "bench-trials"
WARMUP_TRIALS = 2

COMPLETE = optuna.trial.TrialState.COMPLETE

optuna.logging.set_verbosity(optuna.logging.WARNING)


# ---------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    trials: int
    oversubscribed_trials: int
    fixed: bool
    quiet_cores: float
    quiet_wait: float
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
        prog="python -m benchmarks.training_scaling",
        description="One training study with 1 and 2 trial workers, next to Optuna alone.",
    )
    parser.add_argument("--trials", type=int, default=40, help="trials per study (default 40)")
    parser.add_argument(
        "--oversubscribed-trials",
        type=int,
        default=4,
        help="trials of the 2-process run with default threads (default 4; 0 skips it)",
    )
    parser.add_argument(
        "--no-fixed",
        action="store_true",
        help="skip the 2-process / 2-worker runs of the 1-process run's configurations",
    )
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=0.3,
        help="before each run, wait until the machine uses at most this many cores (0.3)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="longest wait for that before a run, seconds (default 300; 0: do not wait)",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379",
        help="Redis server, without db number (default redis://127.0.0.1:6379)",
    )
    parser.add_argument(
        "--redis-db", type=int, default=12, help="Redis db for the workers; flushed (default 12)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for one run (default 3600)"
    )
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the temporary folder with the worker logs"
    )
    args = parser.parse_args(argv)
    if args.trials < 2 or args.trials % 2:
        parser.error("--trials must be an even number >= 2 (the 2-process run splits it)")
    if args.oversubscribed_trials < 0 or args.oversubscribed_trials % 2:
        parser.error("--oversubscribed-trials must be 0 or an even number")
    return Options(
        trials=args.trials,
        oversubscribed_trials=args.oversubscribed_trials,
        fixed=not args.no_fixed,
        quiet_cores=args.quiet_cores,
        quiet_wait=args.quiet_wait,
        redis_url=args.redis_url,
        redis_db=args.redis_db,
        postgres_url=args.postgres_url,
        timeout=args.timeout,
        output=args.output,
        keep_logs=args.keep_logs,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def runner_seed(part: int) -> int:
    return SEED + RUNNER_SEED_STEP * (part + 1)


# ---------------------------------------------------------------------- machine load


def machine_cpu() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot, all CPUs."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return busy, getattr(t, "steal", 0.0)


@dataclass(frozen=True)
class Load:
    """CPU use over one stretch: every process on the machine, ours, stolen by the host."""

    seconds: float
    machine_s: float
    ours_s: float
    steal_s: float

    @property
    def other_cores(self) -> float:
        """Cores used by processes not ours (other work, PostgreSQL, Redis)."""
        return max(0.0, self.machine_s - self.ours_s) / self.seconds if self.seconds else 0.0

    @property
    def steal_cores(self) -> float:
        return self.steal_s / self.seconds if self.seconds else 0.0


class CpuSampler:
    """Machine CPU and ``ours()`` CPU every ``every`` seconds, to cut out any stretch later."""

    def __init__(self, ours: Callable[[], float], every: float = 0.5) -> None:
        self.ours = ours
        self.every = every
        self.samples: list[tuple[float, float, float, float]] = []  # at, busy, steal, ours
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _take(self) -> None:
        busy, steal = machine_cpu()
        self.samples.append((time.time(), busy, steal, self.ours()))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._take()

    def __enter__(self) -> CpuSampler:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._take()

    def window(self, start: float, end: float) -> Load:
        """The samples just outside [start, end] (so the stretch is covered)."""
        before = [s for s in self.samples if s[0] <= start] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= end] or self.samples[-1:]
        a, b = before[-1], after[0]
        return Load(b[0] - a[0], b[1] - a[1], b[3] - a[3], b[2] - a[2])


def wait_for_quiet(limit: float, patience: float, window: float = 5.0) -> tuple[float, float]:
    """Wait (at most ``patience`` seconds) until the machine used at most ``limit`` cores
    over ``window`` seconds while ours idle; (seconds waited, the last cores measured)."""
    began = time.monotonic()
    while True:
        busy0, _ = machine_cpu()
        time.sleep(window)
        busy1, _ = machine_cpu()
        cores = (busy1 - busy0) / window
        waited = time.monotonic() - began
        if cores <= limit or waited >= patience:
            return waited, cores
        log(f"  the machine is busy ({cores:.2f} cores); waiting for other work to finish")


# ---------------------------------------------------------------------- Optuna alone


@dataclass(frozen=True)
class AloneSpec:
    label: str
    storage: str  # "memory" or "postgresql"
    processes: int
    trials: int  # in all, split evenly over the processes
    threads: int | None  # threadpoolctl cap; None = the libraries' defaults
    fixed: bool = False  # runs the configurations of another run (enqueued), not TPE's own


@dataclass(frozen=True)
class AloneRun:
    spec: AloneSpec
    wall_s: float  # first process's start of optimize() -> last one's end
    cpu_s: float  # all processes, during optimize()
    objective_s: list[float]  # every trial, time inside the objective
    optimize_s: list[float]  # per process, wall of its optimize() call
    openmp_threads: list[int]  # per process, OpenMP threads inside the cap
    complete: int
    params: list[dict[str, Any]]  # trials in number order
    values: list[float | None]
    load: Load
    waited: tuple[float, float]  # wait_for_quiet before the run

    @property
    def optuna_overhead_ms(self) -> float:
        """Optuna's own time per trial: optimize() wall minus time in the objective."""
        return 1000 * (sum(self.optimize_s) - sum(self.objective_s)) / len(self.objective_s)


def _alone_child(
    table: str,
    storage_url: str | None,
    study_name: str,
    trials: int,
    threads: int | None,
    sampler_seed: int,
    enqueue: list[dict[str, Any]],
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """One Optuna-alone process: prepare the data, wait for the go, optimize, report.
    ``enqueue``: configurations to run first, in order (in-memory studies)."""
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        frame = pd.read_parquet(table)
        data = prepare_binary(
            frame,
            target=TARGET,
            exclude=EXCLUDE,
            features=None,
            holdout=HOLDOUT,
            folds=FOLDS,
            seed=SEED,
        )
        objective = make_objective(
            data, families=FAMILIES, strategy=STRATEGY, folds=FOLDS, metric=METRIC, seed=SEED
        )
        sampler = make_sampler(STRATEGY, FAMILIES, sampler_seed)
        # The job asks for no pruner, so its runners use make_pruner(None): no pruning
        # (Optuna's own default would be a MedianPruner).
        pruner = make_pruner(None, FOLDS)
        if storage_url is None:
            study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
        else:
            storage = optuna.storages.RDBStorage(storage_url)
            study = optuna.load_study(
                study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
            )
        for params in enqueue:
            study.enqueue_trial(params)
        spent: list[float] = []

        def timed(trial: optuna.Trial) -> float:
            began = time.perf_counter()
            try:
                return objective(trial)
            finally:
                spent.append(time.perf_counter() - began)

        ready.put(os.getpid())
        go.wait()
        limits = threadpool_limits(limits=threads) if threads else contextlib.nullcontext()
        with limits:
            omp = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
            cpu0, start = time.process_time(), time.time()
            study.optimize(timed, n_trials=trials, gc_after_trial=False)
            end, cpu = time.time(), time.process_time() - cpu0
        done = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        out.put(
            {
                "ok": True,
                "start": start,
                "end": end,
                "cpu": cpu,
                "objective": spent,
                "openmp": max(omp) if omp else 0,
                "params": [t.params for t in done],
                "values": [t.value if t.state == COMPLETE else None for t in done],
            }
        )
    except BaseException:
        out.put({"ok": False, "error": traceback.format_exc()})


def run_alone(
    spec: AloneSpec,
    table: Path,
    pg_url: str,
    options: Options,
    enqueue: Sequence[dict[str, Any]] = (),
) -> AloneRun:
    waited = wait_for_quiet(options.quiet_cores, options.quiet_wait)
    ctx = mp.get_context("spawn")
    study_name = f"alone-{uuid.uuid4().hex[:12]}"
    storage_url = None if spec.storage == "memory" else pg_url
    if storage_url is not None:
        study = optuna.create_study(
            study_name=study_name,
            storage=optuna.storages.RDBStorage(storage_url),
            direction="maximize",
        )
        for config in enqueue:  # WAITING trials: each process pops the oldest next
            study.enqueue_trial(config)
        enqueue = ()
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    each = spec.trials // spec.processes
    procs = [
        ctx.Process(
            target=_alone_child,
            args=(
                str(table),
                storage_url,
                study_name,
                each,
                spec.threads,
                runner_seed(part),
                list(enqueue),
                ready,
                go,
                out,
            ),
            name=f"optuna-alone-{part}",
        )
        for part in range(spec.processes)
    ]
    try:
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + options.timeout
        results: list[dict[str, Any]] = []
        waiting = spec.processes
        while waiting:
            try:
                ready.get(timeout=1.0)
                waiting -= 1
            except queue.Empty:
                _check_children(procs, out, deadline)
        busy0, steal0 = machine_cpu()
        go_t = time.time()
        go.set()
        while len(results) < spec.processes:
            try:
                result = out.get(timeout=1.0)
            except queue.Empty:
                _check_children(procs, out, deadline)
                continue
            if not result["ok"]:
                raise BenchmarkError(f"Optuna alone ({spec.label}) failed:\n{result['error']}")
            results.append(result)
        busy1, steal1 = machine_cpu()
        seconds = time.time() - go_t
        for proc in procs:
            proc.join(timeout=30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    params, values = _trials_of(storage_url, study_name, results)
    return AloneRun(
        spec=spec,
        wall_s=max(r["end"] for r in results) - min(r["start"] for r in results),
        cpu_s=sum(r["cpu"] for r in results),
        objective_s=[s for r in results for s in r["objective"]],
        optimize_s=[r["end"] - r["start"] for r in results],
        openmp_threads=[r["openmp"] for r in results],
        complete=sum(1 for v in values if v is not None),
        params=params,
        values=values,
        load=Load(seconds, busy1 - busy0, sum(r["cpu"] for r in results), steal1 - steal0),
        waited=waited,
    )


def _check_children(procs: Sequence[Any], out: Any, deadline: float) -> None:
    for proc in procs:
        if proc.exitcode not in (None, 0):
            with contextlib.suppress(queue.Empty):
                result = out.get(timeout=1.0)
                if not result.get("ok"):
                    raise BenchmarkError(f"an Optuna-alone process failed:\n{result['error']}")
            raise BenchmarkError(f"an Optuna-alone process exited with code {proc.exitcode}")
    if time.monotonic() > deadline:
        raise BenchmarkError("an Optuna-alone run did not finish in time")


def _trials_of(
    storage_url: str | None, study_name: str, results: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[float | None]]:
    """Params and values (None unless COMPLETE) of every trial of the run, by number."""
    if storage_url is None:
        return list(results[0]["params"]), list(results[0]["values"])
    study = optuna.load_study(
        study_name=study_name, storage=optuna.storages.RDBStorage(storage_url)
    )
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return [t.params for t in trials], [t.value if t.state == COMPLETE else None for t in trials]


def workload(params: Sequence[dict[str, Any]]) -> str:
    """What the trials asked of the machine: mean boosting iterations and leaves per tree."""
    iters = [int(p["hgb_max_iter"]) for p in params if "hgb_max_iter" in p]
    leaves = [int(p["hgb_max_leaf_nodes"]) for p in params if "hgb_max_leaf_nodes" in p]
    if not iters or not leaves:
        return "-"
    return f"{statistics.mean(iters):.0f} / {statistics.mean(leaves):.0f}"


MEMORY = "Optuna alone, in memory, 1 process"
PG_DEFAULT = "Optuna alone, 1 process, default threads"
PG_CAP2 = "Optuna alone, 1 process, cap 2"
PG_CAP1 = "Optuna alone, 1 process, cap 1"
PG_TWO = "Optuna alone, 2 processes, cap 1 each"
PG_TWO_FIXED = "Optuna alone, 2 processes, cap 1 each, the cap-1 run's configurations"
PG_OVER = "Optuna alone, 2 processes, default threads (note)"


def alone_specs(trials: int, oversubscribed: int) -> list[AloneSpec]:
    specs = [
        AloneSpec(MEMORY, "memory", 1, trials, 1),
        AloneSpec(PG_DEFAULT, "postgresql", 1, trials, None),
        AloneSpec(PG_CAP2, "postgresql", 1, trials, 2),
        AloneSpec(PG_CAP1, "postgresql", 1, trials, 1),
        AloneSpec(PG_TWO, "postgresql", 2, trials, 1),
    ]
    if oversubscribed:
        specs.append(AloneSpec(PG_OVER, "postgresql", 2, oversubscribed, None))
    return specs


def fixed_spec(trials: int) -> AloneSpec:
    return AloneSpec(PG_TWO_FIXED, "postgresql", 2, trials, 1, fixed=True)


# ---------------------------------------------------------------------- the service


@dataclass(frozen=True)
class Claim:
    runner: str
    state: str
    trial_number: int | None
    claimed_at: float
    ended_at: float


@dataclass(frozen=True)
class TrialTimes:
    number: int
    state: str
    start: float
    complete: float
    params: dict[str, Any]
    value: float | None


@dataclass
class ServiceRun:
    parallelism: int
    job_id: str
    submit_t: float
    seen_t: float
    job: dict[str, float]
    events: dict[str, float]
    fan_in_ready: float | None
    claims: list[Claim]
    trials: list[TrialTimes]
    registered: int  # compute processes in the registry during the search
    layout: str
    load: Load | None = None  # over the search: machine, ours (every worker process)
    pool_cpu_s: float = 0.0  # the trial workers' pool processes, over the search
    waited: tuple[float, float] = (0.0, 0.0)
    fixed: bool = False  # ran enqueued configurations (another run's), not TPE's own
    result: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def fanned_out(self) -> float:
        return self.events["fanned_out"]

    @property
    def done_claims(self) -> list[Claim]:
        return [c for c in self.claims if c.state == "done"]

    @property
    def last_end(self) -> float:
        return max(c.ended_at for c in self.claims)

    @property
    def first_claim(self) -> float:
        return min(c.claimed_at for c in self.claims)

    @property
    def search_s(self) -> float:
        """fanned_out -> the last claim ended."""
        return self.last_end - self.fanned_out

    @property
    def claims_s(self) -> float:
        """The first claim -> the last claim ended."""
        return self.last_end - self.first_claim

    @property
    def whole_s(self) -> float:
        return self.seen_t - self.submit_t

    @property
    def finalize_s(self) -> float:
        return self.job["finished"] - self.events["follow_up_started"]

    @property
    def complete(self) -> int:
        return sum(1 for t in self.trials if t.state == "COMPLETE")

    @property
    def trial_s(self) -> list[float]:
        return [t.complete - t.start for t in self.trials if t.state == "COMPLETE"]

    def runners(self) -> dict[str, list[Claim]]:
        found: dict[str, list[Claim]] = {}
        for claim in sorted(self.claims, key=lambda c: c.claimed_at):
            found.setdefault(claim.runner, []).append(claim)
        return found

    def in_claim_overhead_s(self) -> list[float]:
        """Per done claim: the claim's span minus its Optuna trial's own duration."""
        by_number = {t.number: t for t in self.trials}
        spans = []
        for claim in self.done_claims:
            trial = by_number.get(claim.trial_number) if claim.trial_number is not None else None
            if trial is not None:
                spans.append((claim.ended_at - claim.claimed_at) - (trial.complete - trial.start))
        return spans

    def claim_gaps_s(self) -> list[float]:
        """A runner's previous claim ended -> its next claim."""
        gaps = []
        for claims in self.runners().values():
            gaps += [b.claimed_at - a.ended_at for a, b in itertools.pairwise(claims)]
        return gaps

    def runner_start_s(self) -> list[float]:
        """fanned_out -> each runner's first claim (task delivery, data load)."""
        return [claims[0].claimed_at - self.fanned_out for claims in self.runners().values()]

    def tail_idle_s(self) -> float:
        """The first runner to run out of trials -> the last trial's end: one runner idle."""
        ends = [max(c.ended_at for c in claims) for claims in self.runners().values()]
        return max(ends) - min(ends)


@dataclass
class Service:
    client: Client
    watcher: ResultWatcher
    database: URL
    optuna_url: str
    env: dict[str, str]
    cipml: str
    tmp: Path
    registry: Path
    app: celery.Celery
    timeout: float
    coordinator: WorkerProcess
    trial_workers: list[WorkerProcess] = field(default_factory=list)
    started: int = 0

    def check_workers(self) -> None:
        for worker in [self.coordinator, *self.trial_workers]:
            if not worker.alive():
                raise BenchmarkError(
                    f"worker {worker.name} exited with code {worker.proc.returncode}\n"
                    f"--- its log tail:\n{worker.log_tail()}"
                )

    def start_trial_workers(self, n: int) -> None:
        self.stop_trial_workers()
        names = []
        for _ in range(n):
            self.started += 1
            name = f"{TRIALS_NAME}-{self.started}"
            names.append(f"{name}@{socket.gethostname()}")
            argv = [self.cipml, "worker", "-Q", "trials", "-c", "1", "-n", f"{name}@%h"]
            worker = start_worker(name, argv, self.env, ROOT, self.tmp / f"{name}.log")
            self.trial_workers.append(worker)
        wait_for_workers(self, names)

    def stop_trial_workers(self) -> None:
        while self.trial_workers:
            self.trial_workers.pop().stop()

    def stop_all(self) -> None:
        self.stop_trial_workers()
        self.coordinator.stop()


def wait_for_workers(service: Service, names: Sequence[str], timeout: float = 120) -> None:
    """Until every named worker answers a ping (its pool is up and consuming)."""
    deadline = time.monotonic() + timeout
    while True:
        service.check_workers()
        replies = service.app.control.ping(destination=list(names), timeout=1.0) or []
        seen = {name for reply in replies for name in reply}
        if set(names) <= seen:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(f"workers {sorted(set(names) - seen)} did not answer in time")


def registered_processes(registry: Path) -> int:
    """Live processes in the compute-process registry (what threads_per_process(0) counts)."""
    if not registry.is_dir():
        return 0
    return sum(1 for p in registry.glob("*") if p.name.isdigit() and psutil.pid_exists(int(p.name)))


def pool_cpu(workers: Sequence[WorkerProcess]) -> float:
    """CPU seconds of the workers' pool processes (children with the worker's command line)."""
    total = 0.0
    for worker in workers:
        tree = worker.tree()
        with contextlib.suppress(psutil.Error, IndexError):
            root = tree[0].cmdline()
            for proc in tree[1:]:
                with contextlib.suppress(psutil.Error):
                    if proc.cmdline() == root:
                        times = proc.cpu_times()
                        total += times.user + times.system
    return total


def tree_cpu(workers: Sequence[WorkerProcess]) -> float:
    """CPU seconds of every process of the workers (main, pool, the separate control one)."""
    total = 0.0
    for worker in workers:
        for proc in worker.tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def train_params(dataset_id: int, trials: int, parallelism: int) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "model_name": "bench",
        "model_type": "churn",
        "target": TARGET,
        "exclude": EXCLUDE,
        "optimization": {
            "strategy": STRATEGY,
            "n_trials": trials,
            "parallelism": parallelism,
            "metric": METRIC,
            "families": FAMILIES,
        },
        "validation": {"strategy": "stratified_cv", "folds": FOLDS, "holdout": HOLDOUT},
        "seed": SEED,
    }


def run_job(service: Service, job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """An untimed job through the coordinator worker; its result."""
    handle = service.client.submit(job_type, params)
    arrival = service.watcher.wait(handle.id, service.timeout)
    outcome = arrival.result if isinstance(arrival.result, dict) else {}
    if outcome.get("status") != "SUCCEEDED":
        raise BenchmarkError(f"{job_type} job {handle.id} ended {outcome}")
    return handle.result(timeout=30)


def run_train(
    service: Service,
    dataset_id: int,
    trials: int,
    parallelism: int,
    options: Options,
    enqueue: Sequence[dict[str, Any]] = (),
) -> ServiceRun:
    """One train job with ``parallelism`` fresh trial workers. With ``enqueue``, the job's
    study is created first (the coordinator loads a study that exists) with those
    configurations as WAITING trials, which the runners' ``optimize()`` takes in order."""
    service.start_trial_workers(parallelism)
    layout = "; ".join(w.layout() for w in service.trial_workers)
    registered = registered_processes(service.registry)
    job_id = uuid.uuid4().hex
    if enqueue:
        study = optuna.create_study(
            study_name=job_id,
            storage=optuna.storages.RDBStorage(service.optuna_url),
            direction="maximize",
        )
        for params in enqueue:
            study.enqueue_trial(params)
    waited = wait_for_quiet(options.quiet_cores, options.quiet_wait)
    workers = [service.coordinator, *service.trial_workers]
    params = train_params(dataset_id, trials, parallelism)
    with (
        CpuSampler(lambda: tree_cpu(workers)) as sampler,
        CpuSampler(lambda: pool_cpu(service.trial_workers)) as pools,
    ):
        submit_t = time.time()
        handle = service.client.submit("train", params, job_id=job_id)
        arrival = service.watcher.wait(handle.id, service.timeout)
    outcome = arrival.result if isinstance(arrival.result, dict) else {}
    if outcome.get("status") != "SUCCEEDED":
        raise BenchmarkError(f"train job {handle.id} ended {outcome}")
    result = handle.result(timeout=30)
    problems = {w.name: log_problems(w) for w in service.trial_workers}
    service.stop_trial_workers()
    run = collect(service, handle.id, parallelism, submit_t, arrival.at, registered, layout)
    run.load = sampler.window(run.fanned_out, run.last_end)
    run.pool_cpu_s = pools.window(run.fanned_out, run.last_end).ours_s
    run.waited = waited
    run.fixed = bool(enqueue)
    run.result = result
    run.problems = problems
    return run


def collect(
    service: Service,
    job_id: str,
    parallelism: int,
    submit_t: float,
    seen_t: float,
    registered: int,
    layout: str,
) -> ServiceRun:
    with psycopg.connect(_conninfo(service.database)) as conn:
        row = conn.execute(
            "SELECT submitted_at, started_at, finished_at FROM jobs WHERE id = %s", (job_id,)
        ).fetchone()
        events = conn.execute(
            "SELECT kind, at FROM job_events WHERE job_id = %s ORDER BY id", (job_id,)
        ).fetchall()
        group = conn.execute(
            "SELECT ready_at FROM fan_in_groups WHERE job_id = %s", (job_id,)
        ).fetchone()
        claims = conn.execute(
            "SELECT runner, state, trial_number, claimed_at, ended_at FROM trial_claims "
            "WHERE job_id = %s ORDER BY id",
            (job_id,),
        ).fetchall()
    if row is None or None in row:
        raise BenchmarkError(f"job {job_id} has no submit, start or end time")
    at: dict[str, float] = {}
    for kind, moment in events:
        at.setdefault(kind, moment.timestamp())
    for needed in ("fanned_out", "follow_up_started"):
        if needed not in at:
            raise BenchmarkError(f"job {job_id} has no {needed!r} event: {sorted(at)}")
    study = optuna.load_study(
        study_name=job_id, storage=optuna.storages.RDBStorage(service.optuna_url)
    )
    trials = [
        TrialTimes(
            number=t.number,
            state=t.state.name,
            # Optuna stores naive local times: timestamp() reads them as local, as written.
            start=t.datetime_start.timestamp() if t.datetime_start else float("nan"),
            complete=t.datetime_complete.timestamp() if t.datetime_complete else float("nan"),
            params=dict(t.params),
            value=t.value,
        )
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    ]
    return ServiceRun(
        parallelism=parallelism,
        job_id=job_id,
        submit_t=submit_t,
        seen_t=seen_t,
        job={
            "submitted": row[0].timestamp(),
            "started": row[1].timestamp(),
            "finished": row[2].timestamp(),
        },
        events=at,
        fan_in_ready=group[0].timestamp() if group and group[0] else None,
        claims=[
            Claim(
                runner=str(runner),
                state=str(state),
                trial_number=number,
                claimed_at=claimed.timestamp(),
                ended_at=ended.timestamp() if ended else float("nan"),
            )
            for runner, state, number, claimed, ended in claims
        ],
        trials=trials,
        registered=registered,
        layout=layout,
    )


# ---------------------------------------------------------------------- setup


def machine_info(options: Options) -> dict[str, str]:
    redis_version = redis.Redis.from_url(options.broker).info("server")["redis_version"]
    with psycopg.connect(_conninfo(make_url(options.postgres_url))) as conn:
        pg_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    versions = package_versions(["optuna", "scikit-learn", "numpy", "threadpoolctl", "celery"])
    versions |= {"redis server": redis_version, "postgresql": pg_version}
    return describe_machine(ROOT, versions)


def alone_storage_url(database: URL) -> str:
    """The scratch database with ``search_path`` = a schema of its own (created here)."""
    with psycopg.connect(_conninfo(database), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{ALONE_SCHEMA}"')
    url = database.update_query_dict({"options": f"-csearch_path={ALONE_SCHEMA}"})
    rendered = url.render_as_string(hide_password=False)
    optuna.storages.RDBStorage(rendered)  # creates Optuna's tables before any child runs
    return rendered


def export_table(home: Path, sha256: str, target: Path) -> tuple[int, int]:
    store = ArtifactStore(str(home / "artifacts"))
    with store.open_verified(sha256) as handle:
        frame = pd.read_parquet(handle)
    frame.to_parquet(target)
    return frame.shape


@contextlib.contextmanager
def service_up(options: Options, tmp: Path) -> Iterator[tuple[Service, dict[str, Any]]]:
    """Database, Redis db, the coordinator worker, the CDNOW churn features; torn down after."""
    python = Path(sys.executable)
    cipml = str(python.parent / "cipml")
    data_root, home = tmp / "data", tmp / "home"
    data_root.mkdir()
    home.mkdir()
    shutil.copyfile(BUNDLED, data_root / BUNDLED.name)
    with contextlib.ExitStack() as stack:
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
            "CIPML_THREADS_PER_PROCESS": "0",
            # The compute-process registry lives in the temp dir: count this run's only.
            "TMPDIR": str(tmp),
        }
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(name, None)
        log(f"database {database.database}, files in {tmp}")
        upgrade = subprocess.run(
            [cipml, "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if upgrade.returncode != 0:
            raise BenchmarkError(f"cipml db upgrade failed:\n{upgrade.stderr}")
        coordinator = start_worker(
            COORDINATOR_NAME,
            [
                cipml,
                "worker",
                "-Q",
                "control,preprocessing,training",
                "-c",
                "1",
                "-n",
                f"{COORDINATOR_NAME}@%h",
            ],
            env,
            ROOT,
            tmp / "coordinator.log",
        )
        stack.callback(coordinator.stop)
        watcher = ResultWatcher(options.broker)
        stack.callback(watcher.close)
        client = Client(options.broker, control_timeout=60)
        stack.callback(client.close)
        app = celery.Celery(broker=options.broker)
        stack.callback(app.close)
        settings = Settings(database_url=env["CIPML_DATABASE_URL"], optuna_storage_url=None)
        service = Service(
            client=client,
            watcher=watcher,
            database=database,
            optuna_url=settings.optuna_storage,
            env=env,
            cipml=cipml,
            tmp=tmp,
            registry=tmp / f"cipml-compute-{os.getuid()}",
            app=app,
            timeout=options.timeout,
            coordinator=coordinator,
        )
        stack.callback(service.stop_trial_workers)
        watcher.health_check = service.check_workers
        wait_for_workers(service, [f"{COORDINATOR_NAME}@{socket.gethostname()}"])
        log("ingest CDNOW, build the churn features (untimed)")
        ingested = run_job(service, "ingest_dataset", {"uri": BUNDLED.name, "name": "cdnow"})
        features = run_job(
            service, "build_features", churn_features_params(int(ingested["dataset_id"]))
        )
        yield service, {"ingest": ingested, "features": features, "home": home}


# ---------------------------------------------------------------------- report


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{1000 * median(values):.0f} / {1000 * percentile(list(values), 95):.0f}"


def same_configs(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> str:
    if not a or not b:
        return "not compared"
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"differ from trial {i} on"
    return "the same" if len(a) == len(b) else "the same prefix, different lengths"


def _wait_note(waited: tuple[float, float]) -> str:
    seconds, cores = waited
    return f"{seconds:.0f} s ({cores:.2f})" if seconds >= 1 else f"- ({cores:.2f})"


@dataclass(frozen=True)
class Report:
    text: str
    met: bool


@dataclass(frozen=True)
class Measured:
    alone: list[AloneRun]
    service: list[ServiceRun]


def _job_label(job: ServiceRun) -> str:
    return f"P={job.parallelism}" + (", P=1's configurations" if job.fixed else "")


def _verdict(ratio: float) -> str:
    return "**met**" if ratio >= TARGET_RATIO else "**not met**"


def build_report(
    options: Options,
    machine: Mapping[str, str],
    started: datetime,
    loads: tuple[str, str],
    prepared: Mapping[str, Any],
    measured: Measured,
    logs: str,
) -> Report:
    n = options.trials
    command = shlex.join(["python", "-m", "benchmarks.training_scaling", *sys.argv[1:]])
    features = prepared["features"]
    alone, service = measured.alone, measured.service
    out = [
        *report_header(started, command, machine, *loads),
        "",
        (
            f"Study: CDNOW churn features (dataset {features.get('dataset_id')}: "
            f"{features.get('rows', 0):,} rows x {features.get('columns', '?')} columns), "
            f"`{FAMILIES[0]}` only, {STRATEGY} (TPE, constant liar), {FOLDS}-fold stratified "
            f"CV, {METRIC}, holdout {HOLDOUT}, seed {SEED}, {n} trials. Sampler seed of "
            f"process / runner k: {SEED} + {RUNNER_SEED_STEP} x (k + 1), as the service's "
            "runners use. Runs marked *configurations of ...* do not sample: they run another "
            "run's configurations, enqueued in order (`study.enqueue_trial`), so the same work "
            "is timed on 1 and on 2 processes."
        ),
        "",
        (
            "Service: `cipml worker -Q control,preprocessing,training -c 1` (coordinator and "
            "finalize; it runs its control queue in a separate threads worker) plus, per run, P "
            "fresh `cipml worker -Q trials -c 1` processes (separate workers), "
            "`CIPML_THREADS_PER_PROCESS=0` (auto), the compute-process registry in the run's "
            "own temp dir."
        ),
        "",
        (
            "| run | storage | processes x threads | trials (COMPLETE) | wall s | s / trial "
            "| trial busy s (sum) | mean max_iter / leaves | our CPU / wall "
            "| other processes (cores) | waited for quiet (cores before) |"
        ),
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for solo in alone:
        spec = solo.spec
        threads = "default" if spec.threads is None else f"cap {spec.threads}"
        omp = "/".join(map(str, solo.openmp_threads))
        out.append(
            f"| {spec.label} | {spec.storage} | {spec.processes} x {threads} (OpenMP {omp}) "
            f"| {spec.trials} ({solo.complete}) | {solo.wall_s:.2f} "
            f"| {solo.wall_s / spec.trials:.3f} | {sum(solo.objective_s):.1f} "
            f"| {workload(solo.params)} | {solo.load.ours_s / solo.wall_s:.2f} "
            f"| {solo.load.other_cores:.2f} | {_wait_note(solo.waited)} |"
        )
    cores = os.cpu_count() or 1
    for job in service:
        auto = max(1, cores // max(1, job.registered))
        load = job.load
        assert load is not None
        out.append(
            f"| **service {_job_label(job)}** (search) | postgresql "
            f"| {job.parallelism} x auto = {auto} ({job.registered} registered) "
            f"| {n} ({job.complete}) | **{job.search_s:.2f}** | {job.search_s / n:.3f} "
            f"| {sum(job.trial_s):.1f} | {workload([t.params for t in job.trials])} "
            f"| {load.ours_s / job.search_s:.2f} | {load.other_cores:.2f} "
            f"| {_wait_note(job.waited)} |"
        )
    out += [
        "",
        (
            "Wall s: Optuna alone, the first process's `optimize()` start to the last one's "
            "end (each process loads and splits the data before); service, the coordinator's "
            "`fanned_out` event to the last trial claim's `ended_at`. Trial busy s: Optuna "
            "alone, time inside the objective (CV fits, `trial.report`, user attrs), summed "
            "over processes; service, the Optuna trials' `datetime_complete - datetime_start` "
            "(TPE sampling included). Mean max_iter / leaves: of the configurations run (the "
            "work a trial asks for). Our CPU: Optuna alone, the processes' own CPU time during "
            "`optimize()`; service, every process of the coordinator and trial workers over "
            "the search. Other processes: the machine's busy CPU minus ours over the same "
            "stretch (PostgreSQL, Redis and anything else running). Threads: the threadpoolctl "
            "cap and the OpenMP threads seen inside it; service auto = cores // registered "
            "compute processes (`workers/training/threads.py`). Waited: before the run, until "
            f"the machine used at most {options.quiet_cores} cores over 5 s (at most "
            f"{options.quiet_wait:g} s)."
        ),
        "",
    ]
    by_label = {r.spec.label: r for r in alone}
    s1 = next((r for r in service if r.parallelism == 1), None)
    s2 = next((r for r in service if r.parallelism == 2 and not r.fixed), None)
    s2f = next((r for r in service if r.parallelism == 2 and r.fixed), None)
    one, one_c1, one_c2 = by_label.get(PG_DEFAULT), by_label.get(PG_CAP1), by_label.get(PG_CAP2)
    two, two_fixed = by_label.get(PG_TWO), by_label.get(PG_TWO_FIXED)
    mem = by_label.get(MEMORY)
    met = False
    if s1 is not None and s2 is not None:
        ratio = s1.search_s / s2.search_s
        met = ratio >= TARGET_RATIO and all(r.complete == n for r in (s1, s2))
        out.append(
            f"* **Service, 2 trial workers vs 1, the same TPE study** (search phase): "
            f"{s1.search_s:.2f} s / {s2.search_s:.2f} s = **{ratio:.2f}x** (target >= "
            f"{TARGET_RATIO}x: {_verdict(ratio)}); first claim → last end "
            f"{s1.claims_s / s2.claims_s:.2f}x; whole job (submit → result seen) "
            f"{s1.whole_s:.2f} s / {s2.whole_s:.2f} s = {s1.whole_s / s2.whole_s:.2f}x. "
            f"The two searches sampled different configurations (the second runner's seed, "
            f"the interleaving): mean max_iter / leaves {workload([t.params for t in s1.trials])}"
            f" against {workload([t.params for t in s2.trials])}, trial busy time "
            f"{sum(s1.trial_s):.1f} s against {sum(s2.trial_s):.1f} s."
        )
    if s1 is not None and s2f is not None:
        ratio = s1.search_s / s2f.search_s
        same = sorted(map(repr, (t.params for t in s1.trials))) == sorted(
            map(repr, (t.params for t in s2f.trials))
        )
        out.append(
            f"* **Service, 2 trial workers vs 1, the same {n} configurations** (P=1's, "
            f"enqueued; {'checked the same' if same else '**not the same set**'}): "
            f"{s1.search_s:.2f} s / {s2f.search_s:.2f} s = **{ratio:.2f}x** (>= "
            f"{TARGET_RATIO}x: {_verdict(ratio)}); whole job {s1.whole_s / s2f.whole_s:.2f}x."
        )
    if one and two:
        against = [("default threads", one), ("cap 2", one_c2), ("cap 1", one_c1)]
        out.append(
            f"* Optuna alone, 2 processes capped at 1 thread, own TPE study ({two.wall_s:.2f} s) "
            "vs 1 process: "
            + ", ".join(
                f"{r.wall_s / two.wall_s:.2f}x against {name} ({r.wall_s:.2f} s)"
                for name, r in against
                if r is not None
            )
            + f"; mean max_iter / leaves {workload(two.params)} against "
            f"{workload(one_c1.params) if one_c1 else '-'} (1 process, cap 1)."
        )
    if two_fixed is not None and one_c1 is not None:
        out.append(
            f"* **Optuna alone, 2 processes capped at 1 thread, the same {n} configurations** "
            f"as the 1-process cap-1 run: {one_c1.wall_s:.2f} s / {two_fixed.wall_s:.2f} s = "
            f"**{one_c1.wall_s / two_fixed.wall_s:.2f}x**"
            + (
                f"; against 1 process with default threads {one.wall_s / two_fixed.wall_s:.2f}x"
                f" (its own, different configurations)"
                if one
                else ""
            )
            + "."
        )
    over = by_label.get(PG_OVER)
    if over is not None and two is not None:
        per_over = over.wall_s / over.spec.trials
        per_two = two.wall_s / two.spec.trials
        out.append(
            f"* Oversubscribed (note): 2 processes with default threads, {over.spec.trials} "
            f"trials only: {per_over:.2f} s of wall time per trial against {per_two:.2f} s "
            f"capped at 1 thread each ({per_over / per_two:.1f}x)."
        )
    if mem and one_c1:
        text = (
            f"* Sampled configurations: in memory and PostgreSQL (1 process, cap 1) ran "
            f"{same_configs(mem.params, one_c1.params)} configurations"
        )
        if s1 is not None:
            text += (
                f"; service P=1 and PostgreSQL alone (1 process, cap 1) ran "
                f"{same_configs([t.params for t in s1.trials], one_c1.params)} configurations"
            )
        out.append(text + ".")
    if service:
        out += [
            "",
            "Where the service's time goes (seconds):",
            "",
            "| run | submit → started | coordinator (started → fanned_out) | fanned_out → "
            "first claim, per runner | search (fanned_out → last claim end) | first runner "
            "out of trials → last end | last end → fan-in ready | fan-in ready → finalize "
            "started | finalize | finished → result seen | whole job |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for job in service:
            ready = job.fan_in_ready
            starts = ", ".join(f"{x:.2f}" for x in job.runner_start_s())
            out.append(
                f"| {_job_label(job)} | {job.job['started'] - job.submit_t:.3f} "
                f"| {job.fanned_out - job.job['started']:.2f} | {starts} | {job.search_s:.2f} "
                f"| {job.tail_idle_s():.2f} "
                f"| {_f(ready - job.last_end if ready else None)} "
                f"| {_f(job.events['follow_up_started'] - ready if ready else None, 3)} "
                f"| {job.finalize_s:.2f} | {job.seen_t - job.job['finished']:.3f} "
                f"| {job.whole_s:.2f} |"
            )
        out += [
            "",
            "Per-trial overhead of the service (ms, median / p95):",
            "",
            "| run | trials per runner | Optuna trial duration | claim span - trial duration "
            "| gap between a runner's claims | overhead per trial (sum of medians) "
            "| (search wall x P / trials) - in-memory s / trial |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for job in service:
            inside, gaps = job.in_claim_overhead_s(), job.claim_gaps_s()
            per_runner = ", ".join(str(len(c)) for c in job.runners().values())
            total = 1000 * (median(inside) + (median(gaps) if gaps else 0.0))
            crude = (
                f"{1000 * (job.search_s * job.parallelism / n - mem.wall_s / n):+.0f}"
                if mem
                else "-"
            )
            out.append(
                f"| {_job_label(job)} | {per_runner} | {_ms(job.trial_s)} | {_ms(inside)} "
                f"| {_ms(gaps)} | {total:.0f} | {crude} |"
            )
        own = [
            f"{r.optuna_overhead_ms:.1f} ms ({r.spec.label})"
            for r in alone
            if r.spec.processes == 1
        ]
        out += [
            "",
            (
                "Optuna's own cost per trial alone, `optimize()` wall minus time in the "
                "objective: " + "; ".join(own) + ". In the service that cost is inside the "
                "trial duration; the service's own cost per trial is the claim span beyond the "
                "trial plus the gap to the runner's next claim. The last column is the crude "
                "figure (it mixes in different configurations and, for P=2, contention)."
            ),
        ]
        if s1 is not None and one_c1 is not None and mem is not None:
            per_s1 = s1.claims_s / n
            per_mem, per_pg = mem.wall_s / n, one_c1.wall_s / n
            out += [
                "",
                (
                    f"Service P=1 per trial (first claim → last end, / {n}): {per_s1:.3f} s, "
                    f"against {per_mem:.3f} s in memory and {per_pg:.3f} s on PostgreSQL alone "
                    f"(1 process, cap 1, as the service runs): "
                    f"{1000 * (per_s1 - per_mem):+.0f} ms and {1000 * (per_s1 - per_pg):+.0f} "
                    "ms per trial (like for like where the configurations are the same, see "
                    "above)."
                ),
            ]
    out += [
        "",
        "* Runs: "
        + "; ".join(
            f"{_job_label(r)}: job {r.job_id}, {len(r.done_claims)} done claims of "
            f"{len(r.claims)}, {r.complete} COMPLETE trials of {len(r.trials)}, model version "
            f"{r.result.get('version', '?')}"
            for r in service
        )
        + ".",
        "* Trial worker processes: " + " | ".join(f"{_job_label(r)}: {r.layout}" for r in service),
        f"* Worker logs: {logs}.",
    ]
    return Report("\n".join(out) + "\n", met)


# ---------------------------------------------------------------------- main


def _interrupt(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _log_summary(problems: Mapping[str, Mapping[str, int]]) -> str:
    return ", ".join(
        f"{name}: " + (", ".join(f"{n} {k}" for k, n in p.items()) or "no warnings")
        for name, p in problems.items()
    )


def run(options: Options) -> Report:
    started = datetime.now(UTC)
    machine = machine_info(options)
    tmp = Path(tempfile.mkdtemp(prefix="cipml_bench_training_"))
    try:
        with service_up(options, tmp) as (service, prepared):
            features = prepared["features"]
            table = tmp / "features.parquet"
            shape = export_table(prepared["home"], str(features["sha256"]), table)
            log(f"features: {shape[0]:,} rows x {shape[1]} columns")
            dataset_id = int(features["dataset_id"])
            log(f"warm-up: a {WARMUP_TRIALS}-trial train job (untimed)")
            run_train(service, dataset_id, WARMUP_TRIALS, 1, replace(options, quiet_wait=0))
            load_before = load_average()
            pg_url = alone_storage_url(service.database)
            alone = []
            for spec in alone_specs(options.trials, options.oversubscribed_trials):
                log(f"Optuna alone: {spec.label}, {spec.trials} trials")
                alone.append(run_alone(spec, table, pg_url, options))
                log(f"  {alone[-1].wall_s:.2f} s")
                if spec.label == PG_TWO and options.fixed:
                    reference = next(r for r in alone if r.spec.label == PG_CAP1)
                    fixed = fixed_spec(options.trials)
                    log(f"Optuna alone: {fixed.label}")
                    alone.append(run_alone(fixed, table, pg_url, options, reference.params))
                    log(f"  {alone[-1].wall_s:.2f} s")
            runs = []
            for parallelism in (1, 2):
                log(f"service: parallelism {parallelism}, {options.trials} trials")
                runs.append(run_train(service, dataset_id, options.trials, parallelism, options))
                log(f"  search {runs[-1].search_s:.2f} s, whole job {runs[-1].whole_s:.2f} s")
            if options.fixed:
                log("service: parallelism 2, the P=1 run's configurations")
                configs = [t.params for t in runs[0].trials if t.state == "COMPLETE"]
                runs.append(run_train(service, dataset_id, options.trials, 2, options, configs))
                log(f"  search {runs[-1].search_s:.2f} s, whole job {runs[-1].whole_s:.2f} s")
            for run_ in runs:
                if run_.complete != options.trials or len(run_.done_claims) != options.trials:
                    raise BenchmarkError(
                        f"job {run_.job_id}: {run_.complete} COMPLETE trials and "
                        f"{len(run_.done_claims)} done claims, not {options.trials}"
                    )
            load_after = load_average()
            problems = {COORDINATOR_NAME: log_problems(service.coordinator)}
            for run_ in runs:
                problems |= run_.problems
            return build_report(
                options,
                machine,
                started,
                (load_before, load_after),
                prepared,
                Measured(alone, runs),
                _log_summary(problems),
            )
    finally:
        if not options.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = run(options)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; workers stopped, database dropped", file=sys.stderr)
        return 130
    print(report.text)
    if options.output is not None:
        options.output.write_text(report.text)
    return 0 if report.met else 2


if __name__ == "__main__":
    sys.exit(main())

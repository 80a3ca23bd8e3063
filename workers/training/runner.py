"""A trial runner: claim a trial slot, run one trial inside ``study.optimize``, record its
outcome, until the study has its n trials, its time is up, or its job ended.

Exactly n: a slot is claimed (storage.trial_claims) before each trial, so runners never
start more trials than the study still needs; a failed trial frees its slot; a killed
runner stops renewing its claim, which is then presumed lost and freed (its Optuna trial
goes stale and is re-run with the same parameters). A trial whose claim was lost while it
ran fails at its end instead of counting, so the study never ends with more than n.

A runner works for at most half its task's soft time limit, then hands its part to a
continuation task, so a long search never meets the limit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from api_client.contract import ErrorCode, JobStatus, Queue
from api_client.schemas import ErrorInfo
from api_client.train_params import TrainParams
from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import utcnow
from storage.trial_claims import ClaimState, SlotOutcome, TrialClaimRepository
from workers.jobs.context import publish_progress
from workers.jobs.lifecycle import finish
from workers.runtime import Runtime
from workers.settings import Settings
from workers.training.data import TrainingSetup, dataset_of, training_setup
from workers.training.lease import renew_lease
from workers.training.objective import make_objective, make_pruner, make_sampler
from workers.training.progress import search_line
from workers.training.study import open_study
from workers.training.threads import limited_threads, threads_per_process

log = logging.getLogger("cipml.training")

FINISHED_TRIALS = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
MIN_FAILURES_TO_STOP = 3


class ClaimLost(RuntimeError):
    """The runner's trial slot was presumed lost while the trial ran: it must not count."""


@dataclass
class Search:
    """What one runner needs to run trials of one job."""

    task: Task
    runtime: Runtime
    job_id: str
    params: TrainParams
    setup: TrainingSetup
    study: optuna.Study
    runner: str
    started_at: datetime

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def claim_lease_s(self) -> float:
        # Longer than Optuna's grace period: by the time a dead runner's claim is freed,
        # its trial is stale, so the next optimize() re-runs it rather than a new one.
        return self.settings.trial_grace_s + 2 * self.settings.trial_heartbeat_s


def run_trials(task: Task, runtime: Runtime, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The body of a runner task; None when it handed its part to a continuation."""
    job_id, part = payload["job_id"], int(payload["part"])
    generation = int(payload.get("generation", 0))
    settings: Settings = runtime.settings
    with transaction(runtime.sessions) as session:
        job = JobRepository(session).get(job_id)
        if job is None or JobStatus(job.status).is_terminal:
            return {"part": part, "trials": 0, "stopped": "job ended"}
        params = TrainParams.model_validate(job.params)
    facts = dataset_of(runtime, params.training_dataset_id)
    setup = training_setup(runtime, facts, params)
    search_opts = params.optimization
    study = open_study(
        settings.optuna_storage,
        settings.trial_heartbeat_s,
        job_id,
        # Runners must not share a seed, or their first random trials would coincide.
        sampler=make_sampler(
            search_opts.strategy, setup.space, params.seed + 7919 * (part + 1) + generation
        ),
        pruner=make_pruner(search_opts.pruner, params.validation.folds),
    )
    search = Search(
        task=task,
        runtime=runtime,
        job_id=job_id,
        params=params,
        setup=setup,
        study=study,
        runner=f"{runtime.worker_name}:{task.request.id}",
        started_at=datetime.fromisoformat(payload["search_started"]),
    )
    deadline = datetime.fromisoformat(payload["deadline"]) if payload.get("deadline") else None
    budget = settings.limits_for(Queue.TRIALS.value)[0] / 2
    began, ran = time.monotonic(), 0
    stopped = "finished"
    while True:
        if deadline is not None and utcnow() >= deadline:
            stopped = "timeout"
            break
        if time.monotonic() - began > budget:
            _continue(search, payload, generation)
            return None
        if _job_stopped(search):
            stopped = "job ended"
            break
        with transaction(runtime.sessions) as session:
            slot = TrialClaimRepository(session).claim(
                job_id, search.runner, search_opts.n_trials, search.claim_lease_s
            )
        if slot.outcome is SlotOutcome.FINISHED:
            break
        if slot.outcome is SlotOutcome.FULL:
            time.sleep(min(1.0, settings.trial_heartbeat_s / 2))  # a slot may free
            continue
        assert slot.claim_id is not None
        ran += 1
        if not _run_one(search, slot.claim_id):
            stopped = "too many failed trials"
            break
        _report(search)
    return {"part": part, "trials": ran, "stopped": stopped}


def _run_one(search: Search, claim_id: int) -> bool:
    """Run one trial under the claim; False when failures mean the search must stop."""
    settings = search.settings
    lost = threading.Event()
    stop = threading.Event()

    def renew() -> bool:
        with transaction(search.runtime.sessions) as session:
            still_ours = TrialClaimRepository(session).renew(claim_id, search.claim_lease_s)
        renew_lease(search.runtime, search.job_id)
        if not still_ours:
            lost.set()
        return still_ours

    def heartbeat() -> None:
        while not stop.wait(settings.trial_heartbeat_s):
            try:
                renew()
            except Exception as exc:  # the next beat retries; the claim lease has slack
                log.warning("trial slot renewal failed: %s", exc)

    def before_return() -> None:
        if lost.is_set() or not renew():
            raise ClaimLost(
                "this runner's trial slot was presumed lost (no renewal for "
                f"{search.claim_lease_s:g}s); the trial does not count"
            )

    params = search.params
    objective = make_objective(
        search.setup.data,
        search.setup.spec,
        search.setup.space,
        strategy=params.optimization.strategy,
        metric=params.metric,
        before_return=before_return,
    )
    seen: dict[str, Any] = {}

    def run(trial: optuna.Trial) -> float:
        seen["number"] = trial.number
        with transaction(search.runtime.sessions) as session:
            TrialClaimRepository(session).attach(claim_id, trial.number)
        return objective(trial)

    def finished(_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seen["state"] = trial.state

    beating = threading.Thread(target=heartbeat, name="trial-slot-heartbeat", daemon=True)
    beating.start()
    error: str | None = None
    try:
        with limited_threads(threads_per_process(settings.threads_per_process)):
            search.study.optimize(run, n_trials=1, callbacks=[finished], gc_after_trial=False)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # the trial is FAIL in the study; its slot is freed below
        error = f"{type(exc).__name__}: {exc}"
        log.warning("trial %s failed: %s", seen.get("number"), error)
    finally:
        stop.set()
        beating.join()
    done = seen.get("state") in FINISHED_TRIALS and error is None
    with transaction(search.runtime.sessions) as session:
        claims = TrialClaimRepository(session)
        claims.end(
            claim_id,
            ClaimState.DONE if done else ClaimState.FAILED,
            trial_number=seen.get("number"),
            error=None if done else (error or "the trial did not finish"),
        )
        counts = claims.counts(search.job_id)
    if done:
        return True
    return not _too_many_failures(search, counts)


def _too_many_failures(search: Search, counts: dict[str, int]) -> bool:
    """Stop when no trial has worked after a few tries, or more have failed than the study
    asked for: the search would not end well, and each failure costs a slot's time."""
    failed, finished = counts[ClaimState.FAILED], counts[ClaimState.DONE]
    n_trials = search.params.optimization.n_trials
    if failed < MIN_FAILURES_TO_STOP or (finished > 0 and failed < n_trials):
        return False
    with transaction(search.runtime.sessions) as session:
        last = TrialClaimRepository(session).last_error(search.job_id)
    error = ErrorInfo(
        code=ErrorCode.TRIALS_FAILED,
        message=(
            f"{failed} trials failed ({finished} finished), so the search stopped; the last "
            f"error: {last}. Check the features (types, values) or narrow the families"
        ),
    )
    finish(search.task, search.runtime, search.job_id, JobStatus.FAILED, error=error)
    return True


def _job_stopped(search: Search) -> bool:
    """The job ended (another runner failed it) or a cancel was requested (this ends it)."""
    with transaction(search.runtime.sessions) as session:
        job = JobRepository(session).require(search.job_id)
        status, cancel = JobStatus(job.status), job.cancel_requested
    if status.is_terminal:
        return True
    if cancel:
        error = ErrorInfo(code=ErrorCode.CANCELLED, message="cancelled on request while searching")
        finish(search.task, search.runtime, search.job_id, JobStatus.CANCELLED, error=error)
        return True
    return False


def _report(search: Search) -> None:
    with transaction(search.runtime.sessions) as session:
        counts = TrialClaimRepository(session).counts(search.job_id)
    n_trials = search.params.optimization.n_trials
    try:
        best: float | None = search.study.best_value
    except ValueError:  # no trial has completed (all pruned so far)
        best = None
    elapsed = (utcnow() - search.started_at).total_seconds()
    done = counts[ClaimState.DONE]
    line = search_line(done, n_trials, search.params.metric, best, elapsed)
    payload = {
        "stage": "search",
        "done": done,
        "total": n_trials,
        "line": line,
        "best": best,
        "updated_at": utcnow().isoformat(),
    }
    publish_progress(search.task, search.runtime, search.job_id, payload)


def _continue(search: Search, payload: dict[str, Any], generation: int) -> None:
    """Hand this runner's part to a new task (same part: the fan-in counts it once)."""
    soft, hard = search.settings.limits_for(Queue.TRIALS.value)
    search.task.app.send_task(
        search.task.name,
        args=[{**payload, "generation": generation + 1}],
        queue=Queue.TRIALS.value,
        task_id=f"{search.job_id}-runner-{payload['part']}-{generation + 1}",
        soft_time_limit=soft,
        time_limit=hard,
    )

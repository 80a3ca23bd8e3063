"""The train job's first step, the coordinator: hold an admission slot, check the request
against the data, create the shared study and fan out the trial runners. It returns at
once (nothing waits on another task); the job stays RUNNING while the runners search,
and the fan-in helper starts the finalize step when the last runner ends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api_client.contract import ErrorCode, Queue
from api_client.train_params import TrainParams
from storage.admission import ADMISSION_STEP, AdmissionRepository
from storage.fanin import FanInRepository
from storage.model_versions import ModelVersionRepository
from storage.models import utcnow
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.jobs.registry import Waiting
from workers.settings import Settings
from workers.training.data import dataset_of, training_setup
from workers.training.families import (
    SearchSpace,
    grid_size,
    warm_start_params,
)
from workers.training.labelled_window import resolve_labelled_window
from workers.training.lease import lease_kept
from workers.training.objective import direction_of
from workers.training.study import create_study, is_sqlite
from workers.training.versions import version_summary

RUNNER_TASK = "cipml.training.run_trials"
FINALIZE_TASK = "cipml.training.finalize"


def run_train(ctx: JobContext, params: TrainParams) -> dict[str, Any] | Waiting:
    if not _hold_slot(ctx):
        return Waiting("waiting for a training slot", step=ADMISSION_STEP)
    with ctx.session() as session:
        done = ModelVersionRepository(session).by_job(ctx.job_id)
        if done is not None:
            return version_summary(done)
    settings: Settings = ctx.settings
    check_limits(settings, params)
    if params.dataset_id is None:
        # A labelled window becomes registered datasets once, before anything reads the
        # data; the runners and finalize re-read these resolved params from the job row.
        # Reading a long window can take a while: the slot's lease is kept meanwhile.
        with lease_kept(ctx.runtime, ctx.job_id):
            params = resolve_labelled_window(ctx, params)
    facts = dataset_of(ctx.runtime, params.training_dataset_id)
    ctx.progress(
        "load", 0, 1, f"train: load {facts.name} v{facts.version} ({facts.rows:,} rows)", force=True
    )
    with lease_kept(ctx.runtime, ctx.job_id):
        setup = training_setup(ctx.runtime, facts, params)
    check_grid(params, setup.space)
    data = setup.data
    n_trials = params.optimization.n_trials
    runners = runner_count(settings, params)
    started = utcnow()
    timeout = params.optimization.timeout_s
    deadline = started + timedelta(seconds=timeout) if timeout else None
    study = create_study(
        settings.optuna_storage,
        settings.trial_heartbeat_s,
        ctx.job_id,
        direction_of(params.metric),
        {
            "model_name": params.model_name,
            "dataset_id": facts.id,
            "dataset_sha256": facts.sha256,
            "n_trials": n_trials,
            "metric": params.metric,
            "model_type": params.model_type,
        },
    )
    if params.optimization.strategy != "grid" and not study.trials:
        for warm in warm_start_params(setup.space)[:n_trials]:
            study.enqueue_trial(warm, skip_if_exists=True)
    group_id = f"train-{ctx.job_id}"
    with ctx.session() as session:
        FanInRepository(session).open(
            group_id,
            expected=runners,
            follow_up_task=FINALIZE_TASK,
            follow_up_queue=Queue.TRAINING.value,
            follow_up_payload={"job_id": ctx.job_id},
            job_id=ctx.job_id,
        )
    for part in range(runners):
        ctx.send_after_commit(
            RUNNER_TASK,
            {
                "job_id": ctx.job_id,
                "group_id": group_id,
                "part": part,
                "generation": 0,
                "search_started": started.isoformat(),
                "deadline": deadline.isoformat() if deadline else None,
            },
            queue=Queue.TRIALS.value,
            task_id=f"{ctx.job_id}-runner-{part}",
        )
    inputs = len(data.numeric) + len(data.categorical)
    line = (
        f"search: 0/{n_trials} trials on {runners} runner(s); {len(data.y_train):,} training "
        f"rows x {inputs} inputs"
    )
    ctx.progress("search", 0, n_trials, line, force=True)
    return Waiting(line, keep_running=True)


def check_limits(settings: Settings, params: TrainParams) -> None:
    """Refuse what the cluster's settings do not allow, before any trial runs."""
    search = params.optimization
    if search.n_trials > settings.max_trials:
        raise JobError(
            ErrorCode.LIMIT_EXCEEDED,
            f"n_trials {search.n_trials} is above this cluster's cap of {settings.max_trials} "
            "(CIPML_MAX_TRIALS); ask for fewer trials or raise the cap",
        )
    if search.parallelism > settings.max_parallelism:
        raise JobError(
            ErrorCode.LIMIT_EXCEEDED,
            f"parallelism {search.parallelism} is above this cluster's cap of "
            f"{settings.max_parallelism} (CIPML_MAX_PARALLELISM)",
        )


def check_grid(params: TrainParams, space: SearchSpace) -> None:
    """The grid's size depends on the families the data allows (no tweedie for a negative
    target), so this runs once the data is loaded, still before any trial."""
    search = params.optimization
    if search.strategy == "grid" and search.n_trials > grid_size(space):
        raise JobError(
            ErrorCode.INVALID_PARAMS,
            f"the grid over {', '.join(space.families)} has {grid_size(space)} points; "
            f"n_trials {search.n_trials} is more than it can run (ask for at most that many, "
            "or use strategy bayesian or random)",
        )


def runner_count(settings: Settings, params: TrainParams) -> int:
    """Runners for the study: as asked, never more than its trials, and one on SQLite
    (Optuna advises against SQLite for parallel optimisation)."""
    runners = min(params.optimization.parallelism, params.optimization.n_trials)
    return 1 if is_sqlite(settings.optuna_storage) else runners


def _hold_slot(ctx: JobContext) -> bool:
    """Whether the job holds its admission slot. A lease that expired before the job
    started (the queue was slow) is kept if nobody took the slot; otherwise the job waits
    for a slot again."""
    with ctx.session() as session:
        admission = AdmissionRepository(session)
        if not admission.has_lease(ctx.job_id):
            return False
        admission.renew(ctx.job_id, ctx.settings.training_lease_s)
        return True

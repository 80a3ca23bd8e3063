"""Run a job delivered to a worker: claim it, run its handler, record how it ended.

A delivery claims the job in one transaction: a finished, cancelled or WAITING job is
not run again (a redelivered message returns the recorded outcome). The first delivery
and every delivery that replaces a dead one count an attempt; past CIPML_MAX_ATTEMPTS the
job ends FAILED ``worker_lost`` instead of running. A retry after a transient database
error is not an attempt: nothing died. Whatever happens inside the handler, the job ends
with a status and the worker keeps serving.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from api_client.contract import ErrorCode, JobStatus
from api_client.errors import InvalidRequest
from api_client.schemas import ErrorInfo, JobSummary, validate_params
from storage.admission import ADMISSION_STEP
from storage.db import is_transient, make_engine, make_session_factory, transaction
from storage.errors import ArtifactCorrupt, ArtifactMissing, NotFound
from storage.jobs import JobRepository
from storage.models import Job, utcnow
from workers.jobs.admission import admit_waiting, job_ended
from workers.jobs.context import JobContext
from workers.jobs.errors import JobCancelledSignal, JobError
from workers.jobs.messages import JobMessage
from workers.jobs.registry import Handler, Waiting
from workers.jobs.resources import ResourceMeter
from workers.logs import job_logging
from workers.runtime import Runtime, runtime_for
from workers.settings import Settings

log = logging.getLogger("cipml.job")

DB_RETRY_LIMIT = 5


class JobTask(Task):
    """Base of job tasks: the job row, not Celery's result, is the outcome."""

    abstract = True
    ignore_result = True
    acks_late = True
    reject_on_worker_lost = True
    max_retries = DB_RETRY_LIMIT

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Celery calls this in the worker's main process when the hard time limit killed
        the job's process: no code of the job ran to record it, so record it here."""
        if not isinstance(exc, TimeLimitExceeded):
            return
        payload = args[0] if args else None
        job_id = payload.get("job_id") if isinstance(payload, dict) else None
        if not isinstance(job_id, str):
            return
        _record_hard_time_limit(self, job_id, exc)


def _record_hard_time_limit(task: Task, job_id: str, exc: TimeLimitExceeded) -> None:
    settings: Settings = task.app.cipml_settings
    # A throwaway engine: the main process forks new pool children, which must not
    # inherit open connections.
    engine = make_engine(settings.database, pool_size=1)
    try:
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            jobs = JobRepository(session)
            job = jobs.get(job_id)
            if job is None:
                return
            hard = settings.limits_for(job.queue or "control")[1]
            ended = jobs.finish(
                job_id,
                JobStatus.FAILED,
                error_code=ErrorCode.TIME_LIMIT_EXCEEDED,
                error_message=(
                    f"the job's process was killed at its {hard:g}s hard time "
                    "limit (it did not stop at the soft limit); raise the limit "
                    "with CIPML_TIME_LIMITS or give the job less work"
                ),
            )
            if ended:
                jobs.add_event(
                    job_id,
                    "failed",
                    detail={"code": "time_limit_exceeded", "hard": True, "limit": str(exc)},
                )
            job = jobs.require(job_id)
        publish(task, job)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Delivery:
    redelivered: bool  # the broker says an earlier delivery of this message was lost
    retry: int  # Celery retries after a transient database error


@dataclass(frozen=True)
class Claim:
    run: bool
    attempt: int
    job: Job


def run_job(task: Task, raw_message: Any, handler: Handler) -> dict[str, Any]:
    """The body of every job task: the job's first step."""
    return _run_step(task, raw_message, handler, follow_up=None)


def run_follow_up(
    task: Task,
    raw_message: Any,
    step: Callable[[JobContext], dict[str, Any]],
    name: str = "finalize",
) -> dict[str, Any]:
    """The body of a follow-up task (started by the fan-in helper) that ends a job WAITING
    on its parts, or RUNNING them (``Waiting(keep_running=True)``). ``name`` marks the job
    while the follow-up runs, so a duplicate message does not run it twice."""
    return _run_step(task, raw_message, lambda ctx, _params: step(ctx), follow_up=name)


def _run_step(
    task: Task, raw_message: Any, handler: Handler, *, follow_up: str | None
) -> dict[str, Any]:
    try:
        job_id = JobMessage.parse(raw_message).job_id if not follow_up else _job_id(raw_message)
    except InvalidRequest as exc:
        log.error("refused a job message: %s", exc)
        return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
    runtime = runtime_for(task.app)
    with job_logging(job_id):
        try:
            return _run(task, runtime, job_id, handler, follow_up)
        except Exception as exc:
            if is_transient(exc) and task.request.retries < DB_RETRY_LIMIT:
                log.warning("database unavailable (%s); retrying the job", exc)
                raise task.retry(countdown=2**task.request.retries, exc=exc) from exc
            raise


def _job_id(raw: Any) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("job_id"), str):
        return str(raw["job_id"])
    raise InvalidRequest(
        "a follow-up message needs a string 'job_id'", code=ErrorCode.INVALID_MESSAGE
    )


def _run(
    task: Task, runtime: Runtime, job_id: str, handler: Handler, follow_up: str | None
) -> dict[str, Any]:
    delivery = Delivery(
        redelivered=bool((task.request.delivery_info or {}).get("redelivered")),
        retry=int(task.request.retries or 0),
    )
    claim = _claim(runtime, job_id, delivery, follow_up)
    if not claim.run:
        if JobStatus(claim.job.status).is_terminal:
            job_ended(runtime, task.app, claim.job)  # e.g. worker_lost: free its slot
        return publish(task, claim.job)
    ctx = JobContext(runtime, task, claim.job.id, claim.job.type, claim.attempt)
    outcome: dict[str, Any] | Waiting | None = None
    status, error = JobStatus.SUCCEEDED, None
    meter = ResourceMeter()
    try:
        with meter:
            params = validate_params(claim.job.type, claim.job.params)
            outcome = handler(ctx, params)
    except InvalidRequest as exc:
        status, error = JobStatus.FAILED, ErrorInfo(code=exc.code, message=exc.message)
    except JobError as exc:
        status, error = JobStatus.FAILED, ErrorInfo(code=exc.code, message=exc.message)
    except (ArtifactMissing, ArtifactCorrupt) as exc:
        # A missing or damaged input artifact: a stable code, not a crash.
        status, error = JobStatus.FAILED, ErrorInfo(code=exc.code, message=str(exc))
    except JobCancelledSignal:
        status, error = (
            JobStatus.CANCELLED,
            ErrorInfo(code=ErrorCode.CANCELLED, message="cancelled on request while running"),
        )
    except SoftTimeLimitExceeded:
        soft, _ = runtime.settings.limits_for(claim.job.queue or "control")
        status, error = (
            JobStatus.FAILED,
            ErrorInfo(
                code=ErrorCode.TIME_LIMIT_EXCEEDED,
                message=(
                    f"the job ran past its {soft:g}s soft time limit; raise it with "
                    "CIPML_TIME_LIMITS "
                    "or give the job less work"
                ),
            ),
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        log.error("job crashed: %s", traceback.format_exc())
        status, error = (
            JobStatus.FAILED,
            ErrorInfo(
                code=ErrorCode.INTERNAL_ERROR,
                message=(
                    f"unexpected {type(exc).__name__}: {exc}. The worker logs "
                    f"(job_id={claim.job.id}) "
                    "have the traceback; please report it."
                ),
            ),
        )
    usage = meter.usage.as_columns() if meter.usage else None
    if follow_up and usage is not None:
        usage = _add_usage(claim.job, usage)
    if isinstance(outcome, Waiting) and error is None:
        return _wait(task, runtime, claim.job.id, outcome, usage)
    return finish(
        task,
        runtime,
        claim.job.id,
        status,
        result=outcome if error is None and not isinstance(outcome, Waiting) else None,
        error=error,
        resources=usage,
    )


def _claim(runtime: Runtime, job_id: str, delivery: Delivery, follow_up: str | None) -> Claim:
    """Decide whether this delivery runs the step. A step starts from QUEUED (the first
    step), or for a follow-up from WAITING or from RUNNING parts (a step not yet marked as
    its own); a job running this step is taken over only by a redelivery (its previous
    delivery died) or by its own retry, never by a duplicate message."""
    entry = JobStatus.WAITING if follow_up else JobStatus.QUEUED
    max_attempts = runtime.settings.max_attempts
    with transaction(runtime.sessions) as session:
        jobs = JobRepository(session)
        job = jobs.get(job_id, for_update=True)
        if job is None:
            raise NotFound(f"job {job_id} has no record; was it submitted through control?")
        if follow_up and job.status == JobStatus.RUNNING and job.step != follow_up:
            entry = JobStatus.RUNNING  # the parts were the job running; now this step runs
        running = job.status == JobStatus.RUNNING and job.status != entry
        died = running and (delivery.redelivered or _local_process_gone(job.worker))
        takeover = died or (running and delivery.retry > 0)
        if job.status != entry and not takeover:
            if job.status == JobStatus.RUNNING:
                log.warning("duplicate delivery of a running job ignored")
            return Claim(run=False, attempt=job.attempts, job=job)
        if job.cancel_requested:
            jobs.finish(
                job_id,
                JobStatus.CANCELLED,
                error_code=ErrorCode.CANCELLED,
                error_message="cancelled before it started",
            )
            jobs.add_event(job_id, "cancelled", attempt=job.attempts)
            session.flush()
            session.refresh(job)
            return Claim(run=False, attempt=job.attempts, job=job)
        if died or (job.status == entry and not follow_up):
            job.attempts += 1
        if job.attempts > max_attempts:
            jobs.finish(
                job_id,
                JobStatus.FAILED,
                error_code=ErrorCode.WORKER_LOST,
                error_message=(
                    f"the job was delivered {max_attempts} times and its worker process died each "
                    f"time (killed or out of memory; last worker "
                    f"{job.worker}). It was not run again: check that worker's logs and memory, "
                    "then resubmit"
                ),
            )
            jobs.add_event(job_id, "failed", attempt=job.attempts, detail={"code": "worker_lost"})
            session.flush()
            session.refresh(job)
            return Claim(run=False, attempt=job.attempts, job=job)
        job.status = JobStatus.RUNNING.value
        job.step = follow_up
        job.started_at = job.started_at or utcnow()
        job.heartbeat_at = utcnow()
        job.worker = runtime.worker_name
        jobs.add_event(
            job_id,
            "follow_up_started" if follow_up else "started",
            attempt=job.attempts,
            worker=runtime.worker_name,
            detail={"redelivered": died, "retry": delivery.retry},
        )
        return Claim(run=True, attempt=job.attempts, job=job)


def _add_usage(job: Job, step: dict[str, Any]) -> dict[str, Any]:
    """A job's resource figures cover all its steps: times add up, the peak is the max."""
    return {
        "wall_s": (job.wall_s or 0) + step["wall_s"],
        "cpu_s": (job.cpu_s or 0) + step["cpu_s"],
        "peak_rss_bytes": max(job.peak_rss_bytes or 0, step["peak_rss_bytes"]),
    }


def _local_process_gone(worker: str | None) -> bool:
    """Whether the process that last ran the job was on this machine and has died. The
    embedded broker requeues a killed pool child's message without a redelivered flag;
    this tells that requeue from a duplicate message."""
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))


def _wait(
    task: Task, runtime: Runtime, job_id: str, waiting: Waiting, usage: dict[str, Any] | None
) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        jobs = JobRepository(session)
        job = jobs.require(job_id, for_update=True)
        if job.status == JobStatus.RUNNING:
            if not waiting.keep_running:
                job.status = JobStatus.WAITING.value
                job.step = waiting.step
            job.progress = {**(job.progress or {}), "line": waiting.line}
            for key, value in (usage or {}).items():
                setattr(job, key, value)
            kind = "fanned_out" if waiting.keep_running else "waiting"
            jobs.add_event(job_id, kind, attempt=job.attempts, detail={"step": waiting.step})
    if waiting.step == ADMISSION_STEP:
        admit_waiting(runtime, task.app)
    return {"job_id": job_id, "status": job.status}


def finish(
    task: Task,
    runtime: Runtime,
    job_id: str,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: ErrorInfo | None = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """End the job (unless it already ended) and publish its summary."""
    with transaction(runtime.sessions) as session:
        jobs = JobRepository(session)
        ended = jobs.finish(
            job_id,
            status,
            result=result,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            resources=resources,
        )
        if ended:
            jobs.add_event(
                job_id, status.value.lower(), detail={"code": error.code} if error else None
            )
        job = jobs.require(job_id)
    if ended:
        log.info("job %s", job.status, extra={"data": {"error_code": job.error_code}})
        job_ended(runtime, task.app, job)
    return publish(task, job)


def error_of(job: Job) -> ErrorInfo | None:
    if not job.error_code:
        return None
    return ErrorInfo(code=job.error_code, message=job.error_message or "")


def summary_of(job: Job) -> JobSummary:
    return JobSummary(job_id=job.id, status=job.status, result=job.result, error=error_of(job))


def publish(task: Task, job: Job) -> dict[str, Any]:
    """Put the summary of an ended job in the result backend, where clients wait for it."""
    summary = summary_of(job).model_dump(mode="json")
    if JobStatus(job.status).is_terminal:
        task.backend.store_result(job.id, summary, "SUCCESS")
    return summary

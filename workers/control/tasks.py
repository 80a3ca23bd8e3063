"""Control tasks: submit, look up, list and cancel jobs on behalf of clients."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from celery import Task, shared_task
from pydantic import BaseModel

from api_client.contract import ErrorCode, JobStatus, TaskName, job_task_name
from api_client.schemas import (
    ADMISSION_CONTROLLED,
    ErrorInfo,
    JobInfo,
    JobRef,
    ListJobsRequest,
)
from storage.admission import AdmissionRepository
from storage.db import transaction
from storage.errors import DatabaseUnavailable, NotFound
from storage.jobs import JobRepository
from storage.models import Job
from workers.control.replies import parse_request as _parse
from workers.control.replies import refused as _refused
from workers.control.replies import reply as _reply
from workers.control.submissions import parse_submission, record_submission, request_cancel
from workers.jobs.admission import admit_waiting, job_ended
from workers.jobs.lifecycle import error_of, publish
from workers.jobs.messages import JobMessage
from workers.logs import job_logging
from workers.runtime import runtime_for

log = logging.getLogger("cipml.control")
T = TypeVar("T", bound=BaseModel)


def job_info(job: Job, queue_position: int | None = None) -> JobInfo:
    error = error_of(job)
    return JobInfo(
        id=job.id,
        type=job.type,
        status=job.status,
        params=job.params or {},
        progress=job.progress,
        result=job.result,
        error=error,
        attempts=job.attempts,
        queue=job.queue,
        idempotency_key=job.idempotency_key,
        parent_id=job.parent_id,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        worker=job.worker,
        wall_s=job.wall_s,
        cpu_s=job.cpu_s,
        peak_rss_bytes=job.peak_rss_bytes,
        queue_position=queue_position,
    )


UNAVAILABLE = (
    "the job database is unavailable right now; the request was not lost on the "
    "worker side, retry shortly (and check the database if it persists)"
)


@shared_task(
    name=TaskName.SUBMIT.value,
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseUnavailable,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def submit(self: Task, payload: Any) -> dict[str, Any]:
    runtime = runtime_for(self.app)
    request, refusal, known = parse_submission(payload)
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    with job_logging(known.get("job_id", "-")), transaction(runtime.sessions) as session:
        submission = record_submission(session, request, refusal, known, redelivered)
        if submission is None:
            assert refusal is not None
            log.error("refused a submit with no usable job id: %s", refusal.message)
            return _refused(refusal.code, refusal.message)
    job = submission.job
    if submission.should_dispatch:
        # After commit: the job task reads the row this transaction wrote.
        soft, hard = runtime.settings.limits_for(job.queue or "control")
        self.app.send_task(
            job_task_name(job.type),
            args=[JobMessage(job_id=job.id, job_type=job.type).to_json()],
            task_id=job.id,
            queue=job.queue,
            soft_time_limit=soft,
            time_limit=hard,
        )
    elif JobStatus(job.status).is_terminal:
        publish(self, job)
    elif job.type in ADMISSION_CONTROLLED and job.status == JobStatus.WAITING:
        admit_waiting(runtime, self.app)
    if refusal is not None and submission.created:
        log.warning("job refused: [%s] %s", refusal.code, refusal.message)
    return _reply(
        ok=refusal is None,
        job=job_info(job),
        error=ErrorInfo(code=refusal.code, message=refusal.message) if refusal else None,
    )


@shared_task(name=TaskName.GET_JOB.value, bind=True)
def get_job(self: Task, payload: Any) -> dict[str, Any]:
    ref = _parse(JobRef, payload)
    if isinstance(ref, dict):
        return ref
    try:
        with transaction(runtime_for(self.app).sessions) as session:
            job = JobRepository(session).get(ref.job_id)
            if job is None:
                return _refused(ErrorCode.JOB_NOT_FOUND, f"no job {ref.job_id}")
            return _reply(ok=True, job=job_info(job, AdmissionRepository(session).position(job)))
    except DatabaseUnavailable:
        return _refused(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE)


@shared_task(name=TaskName.LIST_JOBS.value, bind=True)
def list_jobs(self: Task, payload: Any) -> dict[str, Any]:
    request = _parse(ListJobsRequest, payload)
    if isinstance(request, dict):
        return request
    try:
        return _list(self, request)
    except DatabaseUnavailable:
        return _refused(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE)


def _list(self: Task, request: ListJobsRequest) -> dict[str, Any]:
    with transaction(runtime_for(self.app).sessions) as session:
        jobs = JobRepository(session).find(
            statuses=request.status,
            job_type=request.job_type,
            limit=request.limit,
            offset=request.offset,
        )
        admission = AdmissionRepository(session)
        return _reply(ok=True, jobs=[job_info(job, admission.position(job)) for job in jobs])


@shared_task(name=TaskName.CANCEL.value, bind=True)
def cancel(self: Task, payload: Any) -> dict[str, Any]:
    ref = _parse(JobRef, payload)
    if isinstance(ref, dict):
        return ref
    runtime = runtime_for(self.app)
    try:
        with job_logging(ref.job_id), transaction(runtime.sessions) as session:
            job, message, ended_now = request_cancel(session, ref.job_id, ref.actor)
    except NotFound:
        return _refused(ErrorCode.JOB_NOT_FOUND, f"no job {ref.job_id}")
    except DatabaseUnavailable:
        return _refused(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE)
    if ended_now:
        publish(self, job)
        _revoke(self, job.id)
        job_ended(runtime, self.app, job)
    return _reply(ok=True, job=job_info(job), message=message)


def _revoke(task: Task, job_id: str) -> None:
    """Drop the queued message early where the broker can broadcast; the row's status
    already stops it from running when delivered, so this is only an optimisation."""
    if task.app.cipml_settings.embedded:
        return
    try:
        task.app.control.revoke(job_id)
    except Exception as exc:  # the broker may not broadcast; the row check suffices
        log.warning("revoke of %s not broadcast: %s", job_id, exc)


@shared_task(name=TaskName.ADMIT_TRAINING.value, bind=True, ignore_result=True)
def admit_training(self: Task) -> dict[str, int]:
    """Beat's tick: free expired and ended slots, start the waiting jobs that fit. Safe to
    run twice at once (admission serialises on one lock)."""
    admission = admit_waiting(runtime_for(self.app), self.app)
    return {
        "admitted": len(admission.admitted),
        "running": admission.running,
        "waiting": admission.waiting,
    }

"""Control tasks: submit, look up, list and cancel jobs on behalf of clients."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from pydantic import ValidationError

from api_client.contract import ErrorCode, JobStatus, TaskName, job_task_name
from api_client.schemas import ControlReply, ErrorInfo, JobInfo, JobRef, ListJobsRequest
from storage.db import transaction
from storage.errors import NotFound
from storage.jobs import JobRepository
from storage.models import Job
from workers.control.submissions import parse_submission, record_submission, request_cancel
from workers.jobs.lifecycle import publish
from workers.jobs.messages import JobMessage
from workers.logs import job_logging
from workers.runtime import runtime_for

log = logging.getLogger("cipml.control")


def job_info(job: Job) -> JobInfo:
    error = ErrorInfo(code=job.error_code, message=job.error_message or "") \
        if job.error_code else None
    return JobInfo(
        id=job.id, type=job.type, status=job.status, params=job.params or {},
        progress=job.progress, result=job.result, error=error, attempts=job.attempts,
        idempotency_key=job.idempotency_key, parent_id=job.parent_id,
        cancel_requested=job.cancel_requested, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at, worker=job.worker,
        wall_s=job.wall_s, cpu_s=job.cpu_s, peak_rss_bytes=job.peak_rss_bytes)


def _reply(**fields: Any) -> dict[str, Any]:
    return ControlReply(**fields).model_dump(mode="json")


def _refused(code: str, message: str) -> dict[str, Any]:
    return _reply(ok=False, error=ErrorInfo(code=code, message=message))


@shared_task(name=TaskName.SUBMIT.value, bind=True, acks_late=True)
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
        if submission.should_dispatch:
            JobRepository(session).mark_dispatched(submission.job.id)
    job = submission.job
    if submission.should_dispatch:
        # After commit: the job task reads the row this transaction wrote.
        soft, hard = runtime.settings.limits_for(job.queue or "control")
        self.app.send_task(job_task_name(job.type),
                           args=[JobMessage(job_id=job.id, job_type=job.type).to_json()],
                           task_id=job.id, queue=job.queue, soft_time_limit=soft,
                           time_limit=hard)
    elif JobStatus(job.status).is_terminal:
        publish(self, job)
    if refusal is not None and submission.created:
        log.warning("job refused: [%s] %s", refusal.code, refusal.message)
    return _reply(ok=refusal is None, job=job_info(job),
                  error=ErrorInfo(code=refusal.code, message=refusal.message) if refusal else None)


@shared_task(name=TaskName.GET_JOB.value, bind=True)
def get_job(self: Task, payload: Any) -> dict[str, Any]:
    try:
        ref = JobRef.model_validate(payload)
    except ValidationError as exc:
        return _refused(ErrorCode.INVALID_MESSAGE, str(exc))
    with transaction(runtime_for(self.app).sessions) as session:
        job = JobRepository(session).get(ref.job_id)
        if job is None:
            return _refused(ErrorCode.JOB_NOT_FOUND, f"no job {ref.job_id}")
        return _reply(ok=True, job=job_info(job))


@shared_task(name=TaskName.LIST_JOBS.value, bind=True)
def list_jobs(self: Task, payload: Any) -> dict[str, Any]:
    try:
        request = ListJobsRequest.model_validate(payload)
    except ValidationError as exc:
        return _refused(ErrorCode.INVALID_MESSAGE, str(exc))
    with transaction(runtime_for(self.app).sessions) as session:
        jobs = JobRepository(session).list(statuses=request.status, job_type=request.job_type,
                                           limit=request.limit, offset=request.offset)
        return _reply(ok=True, jobs=[job_info(job) for job in jobs])


@shared_task(name=TaskName.CANCEL.value, bind=True)
def cancel(self: Task, payload: Any) -> dict[str, Any]:
    try:
        ref = JobRef.model_validate(payload)
    except ValidationError as exc:
        return _refused(ErrorCode.INVALID_MESSAGE, str(exc))
    runtime = runtime_for(self.app)
    try:
        with job_logging(ref.job_id), transaction(runtime.sessions) as session:
            job, message, ended_now = request_cancel(session, ref.job_id, ref.actor)
    except NotFound:
        return _refused(ErrorCode.JOB_NOT_FOUND, f"no job {ref.job_id}")
    if ended_now:
        publish(self, job)
        _revoke(self, job.id)
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

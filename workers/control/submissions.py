"""Turning a submit request into a job row: validated, idempotent, never lost.

Every request that names a job id gets a row: a valid one QUEUED (and dispatched), an
invalid one FAILED with the code saying why, so the caller's handle always finds out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api_client.contract import CONTRACT_VERSION, ErrorCode, JobStatus
from api_client.errors import InvalidRequest
from api_client.schemas import (
    ADMISSION_CONTROLLED,
    JOB_TYPES,
    SubmitRequest,
    job_queue,
    validate_params,
)
from storage.admission import ADMISSION_STEP
from storage.jobs import JobRepository
from storage.models import Job, utcnow


@dataclass(frozen=True)
class Submission:
    job: Job
    created: bool
    should_dispatch: bool


def parse_submission(
    payload: Any,
) -> tuple[SubmitRequest | None, InvalidRequest | None, dict[str, Any]]:
    """The request, or why it is refused, plus what could be read of it (id, type)."""
    known: dict[str, Any] = {}
    if isinstance(payload, dict):
        for key in ("job_id", "job_type", "idempotency_key"):
            value = payload.get(key)
            if isinstance(value, str) and 0 < len(value) <= 64:
                known[key] = value
        contract = payload.get("contract")
        if isinstance(contract, int) and contract > CONTRACT_VERSION:
            return (
                None,
                InvalidRequest(
                    f"the client speaks contract {contract}, this worker knows up to "
                    f"{CONTRACT_VERSION}: upgrade the workers before the clients",
                    code=ErrorCode.CONTRACT_VERSION_UNSUPPORTED,
                ),
                known,
            )
    try:
        request = SubmitRequest.model_validate(payload)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return (
            None,
            InvalidRequest(f"malformed submit request: {fields}", code=ErrorCode.INVALID_MESSAGE),
            known,
        )
    try:
        validate_params(request.job_type, request.params)
    except InvalidRequest as exc:
        return request, exc, known
    return request, None, known


def record_submission(
    session: Session,
    request: SubmitRequest | None,
    refusal: InvalidRequest | None,
    known: dict[str, Any],
    redelivered: bool,
) -> Submission | None:
    """Write the job row (or find the existing one). None when there is no id to record."""
    job_id = request.job_id if request else known.get("job_id")
    if job_id is None:
        return None
    job_type = request.job_type if request else known.get("job_type", "unknown")
    jobs = JobRepository(session)
    row = Job(
        id=job_id,
        type=job_type[:100],
        params=request.params if request else {},
        idempotency_key=request.idempotency_key if request else None,
        parent_id=request.parent_id if request else None,
        submitted_at=_aware(request.submitted_at) if request else None,
        attempts=0,
        cancel_requested=False,
    )
    if refusal is None and request is not None:
        params = JOB_TYPES[request.job_type].params.model_validate(request.params)
        row.queue = job_queue(request.job_type, params)
        if request.job_type in ADMISSION_CONTROLLED:
            # Dispatched by admission control once a slot is free (oldest first).
            row.status, row.step = JobStatus.WAITING.value, ADMISSION_STEP
        else:
            row.status = JobStatus.QUEUED.value
            row.dispatched_at = utcnow()  # dispatched right after this commit
    else:
        assert refusal is not None
        row.status = JobStatus.FAILED.value
        row.error_code, row.error_message = refusal.code, refusal.message
        row.finished_at = utcnow()
    if row.parent_id is not None and jobs.get(row.parent_id) is None:
        row.parent_id = None  # lineage is best effort; an unknown parent must not lose the job
    job, created = jobs.create(row)
    if created:
        jobs.add_event(job.id, "submitted", detail={"status": job.status})
    should_dispatch = job.status == JobStatus.QUEUED and (
        created or job.dispatched_at is None or redelivered
    )
    if should_dispatch and not created:
        jobs.mark_dispatched(job.id)  # a dispatch that may have been lost is repeated
    return Submission(job=job, created=created, should_dispatch=should_dispatch)


def request_cancel(session: Session, job_id: str, actor: str | None) -> tuple[Job, str, bool]:
    """Cancel: a queued/waiting job ends now, a running one at its next checkpoint.
    Returns (job, message, ended_now)."""
    jobs = JobRepository(session)
    job = jobs.require(job_id, for_update=True)
    if JobStatus(job.status).is_terminal:
        return job, f"job {job_id} already ended {job.status}; nothing to cancel", False
    job.cancel_requested = True
    jobs.add_event(job_id, "cancel_requested", detail={"actor": actor})
    if job.status in (JobStatus.QUEUED, JobStatus.WAITING):
        jobs.finish(
            job_id,
            JobStatus.CANCELLED,
            error_code=ErrorCode.CANCELLED,
            error_message=f"cancelled by {actor or 'a client'} before it finished",
        )
        jobs.add_event(job_id, "cancelled")
        session.flush()
        session.refresh(job)
        return job, f"job {job_id} cancelled", True
    return job, f"job {job_id} is running; it stops at its next checkpoint", False


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value

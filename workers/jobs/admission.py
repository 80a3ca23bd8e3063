"""Admission control, the workers' side: grant free training slots and dispatch the jobs
that got one (storage.admission decides; this sends). Called when a training job is
submitted, when one ends, when one goes back to waiting, and on every beat tick."""

from __future__ import annotations

import logging

from celery import Celery

from api_client.client import PROGRESS_STATE
from api_client.contract import Queue, TaskName, job_task_name
from api_client.schemas import ADMISSION_CONTROLLED
from storage.admission import Admission, AdmissionRepository
from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import Job, utcnow
from workers.jobs.messages import JobMessage
from workers.runtime import Runtime

log = logging.getLogger("cipml.admission")
RETRAIN_KEY_PREFIX = "retrain:"  # the idempotency key of a retrain's train job


def admit_waiting(runtime: Runtime, app: Celery) -> Admission:
    """Grant free slots to the oldest waiting jobs and send them; tell the others where
    they stand in the queue."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        admission = AdmissionRepository(session).admit(
            settings.max_training_jobs, settings.training_lease_s
        )
        jobs = JobRepository(session)
        admitted = [jobs.require(job_id) for job_id in admission.admitted]
        for job in admitted:
            jobs.add_event(job.id, "admitted", detail={"running": admission.running})
        waiting = AdmissionRepository(session).waiting_ids()
        lines = {
            job_id: (
                f"waiting for a training slot: position {position} of {len(waiting)} "
                f"({admission.running} of {settings.max_training_jobs} slots in use)"
            )
            for position, job_id in enumerate(waiting, start=1)
        }
        for job_id, line in lines.items():
            jobs.set_waiting_line(job_id, line)
    for job in admitted:
        _dispatch(runtime, app, job)
    for job_id, line in lines.items():
        progress = {"stage": "admission", "done": 0, "total": None, "line": line}
        progress["updated_at"] = utcnow().isoformat()
        app.backend.store_result(job_id, {"job_id": job_id, "progress": progress}, PROGRESS_STATE)
    if admission.admitted:
        log.info(
            "admitted %d training job(s); %d running, %d waiting",
            len(admission.admitted),
            admission.running,
            admission.waiting,
        )
    return admission


def job_ended(runtime: Runtime, app: Celery, job: Job) -> None:
    """A job ended: an admission-controlled one frees its slot for the next in line, and a
    retrain's training is judged against the champion (by task name: the retraining
    policy sits in the scheduler, above the workers)."""
    if job.type not in ADMISSION_CONTROLLED:
        return
    with transaction(runtime.sessions) as session:
        AdmissionRepository(session).release(job.id)
    admit_waiting(runtime, app)
    if (job.idempotency_key or "").startswith(RETRAIN_KEY_PREFIX):
        app.send_task(
            TaskName.DECIDE_RETRAIN.value,
            args=[{"job_id": job.id}],
            queue=Queue.MONITORING.value,
        )


def _dispatch(runtime: Runtime, app: Celery, job: Job) -> None:
    soft, hard = runtime.settings.limits_for(job.queue or "training")
    app.send_task(
        job_task_name(job.type),
        args=[JobMessage(job_id=job.id, job_type=job.type).to_json()],
        task_id=job.id,
        queue=job.queue,
        soft_time_limit=soft,
        time_limit=hard,
    )

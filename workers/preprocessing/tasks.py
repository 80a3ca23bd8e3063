"""Celery tasks of the preprocessing jobs (thin: the work is in plain modules)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from api_client.contract import ErrorCode, JobStatus, job_task_name
from api_client.schemas import ErrorInfo
from storage.db import is_transient
from workers.fanin import complete_part
from workers.jobs.lifecycle import JobTask, finish, run_follow_up, run_job
from workers.preprocessing import features_job
from workers.preprocessing.clean_job import run_clean
from workers.preprocessing.ingest_job import run_ingest
from workers.preprocessing.quality_job import run_assess
from workers.runtime import runtime_for

log = logging.getLogger("cipml.job")


@shared_task(name=job_task_name("ingest_dataset"), bind=True, base=JobTask)
def ingest_dataset(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, run_ingest)


@shared_task(name=job_task_name("assess_quality"), bind=True, base=JobTask)
def assess_quality(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, run_assess)


@shared_task(name=job_task_name("clean"), bind=True, base=JobTask)
def clean(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, run_clean)


@shared_task(name=job_task_name("build_features"), bind=True, base=JobTask)
def build_features(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, features_job.run_build_features)


@shared_task(
    name=features_job.PART_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def build_features_part(self: Task, payload: dict[str, Any]) -> bool:
    runtime = runtime_for(self.app)
    try:
        result = features_job.run_part(runtime, payload)
    except Exception as exc:
        if is_transient(exc):
            raise
        # A partition that cannot be built ends the whole job: it would never complete.
        log.exception("features partition %s failed", payload.get("part"))
        error = ErrorInfo(
            code=ErrorCode.INTERNAL_ERROR,
            message=f"partition {payload.get('part')} failed: {type(exc).__name__}: {exc}",
        )
        finish(self, runtime, payload["job_id"], JobStatus.FAILED, error=error)
        return False
    sent = complete_part(runtime, self.app, payload["group_id"], str(payload["part"]), result)
    features_job.report_part_done(runtime, payload["job_id"])
    return sent


@shared_task(name=features_job.FINALIZE_TASK, bind=True, base=JobTask)
def build_features_finalize(self: Task, payload: Any) -> dict[str, Any]:
    return run_follow_up(self, payload, lambda ctx: features_job.finalize(ctx, payload))

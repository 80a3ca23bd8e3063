"""Celery tasks of the preprocessing jobs (thin: the work is in plain modules)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from api_client.contract import job_task_name
from workers.fanin import run_part
from workers.jobs.lifecycle import JobTask, run_follow_up, run_job
from workers.preprocessing import features_job
from workers.preprocessing.clean_job import run_clean
from workers.preprocessing.ingest_job import run_ingest
from workers.preprocessing.quality_job import run_assess


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
    return run_part(
        self, payload, lambda _task, rt, part: features_job.run_part(rt, part), "feature partitions"
    )


@shared_task(name=features_job.FINALIZE_TASK, bind=True, base=JobTask)
def build_features_finalize(self: Task, payload: Any) -> dict[str, Any]:
    return run_follow_up(self, payload, lambda ctx: features_job.finalize(ctx, payload))

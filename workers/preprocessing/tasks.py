"""Celery tasks of the preprocessing jobs (thin: the work is in plain modules)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from api_client.contract import job_task_name
from workers.jobs.lifecycle import JobTask, run_job
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

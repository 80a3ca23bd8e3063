"""Celery tasks of the training jobs (thin: the work is in plain modules)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from api_client.contract import job_task_name
from workers.fanin import run_part
from workers.jobs.lifecycle import JobTask, run_follow_up, run_job
from workers.training import finalize, runner, train_job


@shared_task(name=job_task_name("train"), bind=True, base=JobTask)
def train(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, train_job.run_train)


@shared_task(
    name=train_job.RUNNER_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_trials(self: Task, payload: dict[str, Any]) -> bool:
    return run_part(self, payload, runner.run_trials, what="trial runners")


@shared_task(name=train_job.FINALIZE_TASK, bind=True, base=JobTask)
def train_finalize(self: Task, payload: Any) -> dict[str, Any]:
    return run_follow_up(self, payload, lambda ctx: finalize.finalize(ctx, payload))

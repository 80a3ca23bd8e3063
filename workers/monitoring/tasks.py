"""Celery tasks of monitoring (thin: the work is in plain modules)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from api_client.contract import ErrorCode, TaskName, job_task_name
from api_client.monitoring_params import CheckIntervalRequest
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.errors import DatabaseUnavailable
from workers.control.replies import parse_request, refused, reply
from workers.jobs.lifecycle import JobTask, run_job
from workers.monitoring.check_job import run_check
from workers.runtime import runtime_for


@shared_task(name=job_task_name("check_model"), bind=True, base=JobTask)
def check_model(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, run_check)


@shared_task(name=TaskName.SET_CHECK_INTERVAL.value, bind=True)
def set_check_interval(self: Task, payload: Any) -> dict[str, Any]:
    request = parse_request(CheckIntervalRequest, payload)
    if isinstance(request, dict):
        return request
    try:
        with transaction(runtime_for(self.app).sessions) as session:
            found = DeploymentRepository(session).set_check_interval(
                request.model_name, request.seconds
            )
    except DatabaseUnavailable:
        return refused(ErrorCode.DATABASE_UNAVAILABLE, "the database is unavailable; retry")
    if not found:
        return refused(
            ErrorCode.DEPLOYMENT_NOT_FOUND,
            f"{request.model_name!r} has no deployment: only deployed models are checked "
            f"on a schedule (client.deploy first; client.check runs a check any time)",
        )
    return reply(
        ok=True, data={"model_name": request.model_name, "check_interval_s": request.seconds}
    )

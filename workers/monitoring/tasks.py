"""Celery tasks of monitoring (thin: the work is in plain modules)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from api_client.contract import ErrorCode, Queue, TaskName, job_task_name
from api_client.monitoring_params import CheckIntervalRequest
from api_client.retrain_params import AlertsRequest
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.errors import DatabaseUnavailable
from workers.control.replies import parse_request, refused, reply
from workers.jobs.lifecycle import JobTask, run_job
from workers.monitoring.alert_listing import list_alerts
from workers.monitoring.check_job import run_check
from workers.monitoring.webhook_delivery import attempt_delivery
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


@shared_task(name=TaskName.DELIVER_WEBHOOK.value, bind=True)
def deliver_webhook(self: Task, payload: Any) -> dict[str, Any]:
    """Attempt one webhook delivery; a retryable failure sends the next attempt later."""
    delivery_id = str((payload or {}).get("delivery_id", ""))
    runtime = runtime_for(self.app)
    try:
        outcome = attempt_delivery(runtime, delivery_id)
    except DatabaseUnavailable:  # the retraining sweep re-sends overdue deliveries
        return {"delivery_id": delivery_id, "status": "database_unavailable"}
    if outcome.retry_in_s is not None:
        self.app.send_task(
            TaskName.DELIVER_WEBHOOK.value,
            args=[{"delivery_id": delivery_id}],
            queue=Queue.MONITORING.value,
            countdown=outcome.retry_in_s,
            task_id=f"webhook-{delivery_id}-{outcome.attempt + 1}",
        )
    return {"delivery_id": delivery_id, "status": outcome.status, "attempt": outcome.attempt}


@shared_task(name=TaskName.ALERTS.value, bind=True)
def alerts(self: Task, payload: Any) -> dict[str, Any]:
    request = parse_request(AlertsRequest, payload)
    if isinstance(request, dict):
        return request
    try:
        with transaction(runtime_for(self.app).sessions) as session:
            data = list_alerts(session, request)
    except DatabaseUnavailable:
        return refused(ErrorCode.DATABASE_UNAVAILABLE, "the database is unavailable; retry")
    return reply(ok=True, data=data)

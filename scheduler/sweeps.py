"""Periodic sweeps: beat sends one sweep task per tick; the sweep claims its period with a
unique key, then fans out one task per item: an evaluation per running rollout, a check
job per deployed model.

A sweep whose claim the database dropped (a restart) retries the same period.
Two beats running by mistake send two sweeps per period: the second finds the period
claimed and does nothing, so nothing is evaluated twice. A sweep that dies after its claim
loses that period's fan-out, never doubles it; the next period runs again. Each item is
also keyed: an evaluation by (rollout, period), a check job by (model, interval, period),
so a redelivered one decides (or runs) once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import Task, shared_task

from api_client.client import job_id_for_key, submit_task_id
from api_client.contract import TaskName
from api_client.schemas import SubmitRequest
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.errors import DatabaseUnavailable
from storage.models import utcnow
from storage.sweeps import claim_period, period_of
from workers.deployment.rollouts import IN_PROGRESS, STATES
from workers.runtime import runtime_for

log = logging.getLogger("cipml.scheduler")
SERVING = STATES  # every deployment serves something, whatever its rollout's state

ROLLOUTS = "rollouts"
MONITORING = "monitoring"
SWEEP_RETRIES = 10
SWEEP_RETRY_S = 2.0


@shared_task(name=TaskName.SWEEP_ROLLOUTS.value, bind=True, max_retries=SWEEP_RETRIES)
def sweep_rollouts(
    self: Task, interval_s: float | None = None, period: int | None = None
) -> dict[str, Any]:
    """``interval_s`` is beat's: the period is the tick's, whatever the worker's settings."""
    runtime = runtime_for(self.app)
    now = utcnow()
    interval = interval_s or runtime.settings.rollout_interval_s
    period = period if period is not None else period_of(now, interval)
    try:
        with transaction(runtime.sessions) as session:
            if not claim_period(session, ROLLOUTS, period, now):
                log.info("rollout sweep of period %d already claimed: skipped", period)
                return {"period": period, "claimed": False, "evaluations": 0}
            running = DeploymentRepository(session).active(IN_PROGRESS)
    except DatabaseUnavailable as exc:
        raise retry_sweep(self, exc, interval, period) from exc
    tick = f"{ROLLOUTS}:{period}"
    for deployment in running:
        self.app.send_task(
            TaskName.EVALUATE_ROLLOUT.value,
            args=[{"model_name": deployment.model_name, "tick": tick}],
            queue="control",
        )
    log.info("rollout sweep of period %d: %d rollouts to evaluate", period, len(running))
    return {"period": period, "claimed": True, "evaluations": len(running)}


@shared_task(name=TaskName.SWEEP_MONITORING.value, bind=True, max_retries=SWEEP_RETRIES)
def sweep_monitoring(
    self: Task, interval_s: float | None = None, period: int | None = None
) -> dict[str, Any]:
    """One check job per deployed model per period, submitted with an idempotency key made
    of the period: a duplicate sweep, or a redelivered one, finds the job already there."""
    runtime = runtime_for(self.app)
    interval = interval_s or runtime.settings.drift_check_interval
    now = utcnow()
    period = period if period is not None else period_of(now, interval)
    try:
        with transaction(runtime.sessions) as session:
            if not claim_period(session, MONITORING, period, now):
                log.info("monitoring sweep of period %d already claimed: skipped", period)
                return {"period": period, "claimed": False, "checks": 0}
            deployed = DeploymentRepository(session).active(SERVING)
    except DatabaseUnavailable as exc:
        raise retry_sweep(self, exc, interval, period) from exc
    keys = {
        d.model_name: check_key(d.model_name, d.check_interval_s or interval, now) for d in deployed
    }
    for model_name, key in keys.items():
        job_id = job_id_for_key(key)
        request = SubmitRequest(
            job_id=job_id,
            job_type="check_model",
            params={"model_name": model_name},  # the last 24 hours (CheckParams)
            idempotency_key=key,
        )
        self.app.send_task(
            TaskName.SUBMIT.value,
            args=[request.model_dump(mode="json")],
            queue="control",
            task_id=submit_task_id(job_id),
        )
    log.info("monitoring sweep of period %d: %d checks submitted", period, len(keys))
    return {"period": period, "claimed": True, "checks": len(keys)}


def retry_sweep(task: Task, exc: Exception, interval_s: float, period: int) -> Exception:
    """The database dropped the claim's transaction (a restart, a failover): nothing was
    claimed, so the same period is tried again shortly rather than lost."""
    log.warning("sweep %s of period %d: %s; retrying", task.name, period, exc)
    return task.retry(
        exc=exc, countdown=SWEEP_RETRY_S, kwargs={"interval_s": interval_s, "period": period}
    )


def check_key(model_name: str, interval_s: float, now: datetime) -> str:
    """The idempotency key of a model's scheduled check: one job per period of its own
    interval (a longer per-model interval skips the sweeps inside its period)."""
    return f"check_model:{model_name}:{interval_s:g}:{period_of(now, interval_s)}"

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from celery import Task, shared_task
from sqlalchemy.orm import Session

from api_client.client import job_id_for_key, submit_task_id
from api_client.contract import TaskName
from api_client.schemas import SubmitRequest
from storage.db import transaction
from storage.deployments import DeploymentRecord, DeploymentRepository
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
T = TypeVar("T")


@shared_task(name=TaskName.SWEEP_ROLLOUTS.value, bind=True, max_retries=SWEEP_RETRIES)
def sweep_rollouts(
    self: Task, interval_s: float | None = None, period: int | None = None
) -> dict[str, Any]:
    """``interval_s`` is beat's: the period is the tick's, whatever the worker's settings."""
    interval = interval_s or runtime_for(self.app).settings.rollout_interval_s
    claim = claim_sweep(self, ROLLOUTS, interval, period, _in_progress)
    if not claim.claimed:
        return {"period": claim.period, "claimed": False, "evaluations": 0}
    period, running = claim.period, claim.work
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
    interval = interval_s or runtime_for(self.app).settings.drift_check_interval
    claim = claim_sweep(self, MONITORING, interval, period, _serving)
    if not claim.claimed:
        return {"period": claim.period, "claimed": False, "checks": 0}
    period, now, deployed = claim.period, claim.now, claim.work
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


@dataclass(frozen=True)
class SweepClaim(Generic[T]):
    period: int
    now: datetime
    claimed: bool  # False: an earlier sweep (another beat, a redelivery) has the period
    work: T  # what the claim's transaction read (meaningless when not claimed)


def claim_sweep(
    task: Task,
    sweep: str,
    interval_s: float,
    period: int | None,
    read: Callable[[Session, datetime], T],
) -> SweepClaim[T]:
    """Claim the sweep's period (``period`` on a retry, else the one now falls in) and, in
    the same transaction, read what it fans out. A claim the database drops is retried
    for the same period (``retry_sweep``)."""
    now = utcnow()
    period = period if period is not None else period_of(now, interval_s)
    try:
        with transaction(runtime_for(task.app).sessions) as session:
            if not claim_period(session, sweep, period, now):
                log.info("%s sweep of period %d already claimed: skipped", sweep, period)
                return SweepClaim(period, now, False, cast(T, None))
            return SweepClaim(period, now, True, read(session, now))
    except DatabaseUnavailable as exc:
        raise retry_sweep(task, exc, interval_s, period) from exc


def retry_sweep(task: Task, exc: Exception, interval_s: float, period: int) -> Exception:
    """The database dropped the claim's transaction (a restart, a failover): nothing was
    claimed, so the same period is tried again shortly rather than lost."""
    log.warning("sweep %s of period %d: %s; retrying", task.name, period, exc)
    return task.retry(
        exc=exc, countdown=SWEEP_RETRY_S, kwargs={"interval_s": interval_s, "period": period}
    )


def _in_progress(session: Session, _now: datetime) -> list[DeploymentRecord]:
    return DeploymentRepository(session).active(IN_PROGRESS)


def _serving(session: Session, _now: datetime) -> list[DeploymentRecord]:
    return DeploymentRepository(session).active(SERVING)


def check_key(model_name: str, interval_s: float, now: datetime) -> str:
    """The idempotency key of a model's scheduled check: one job per period of its own
    interval (a longer per-model interval skips the sweeps inside its period)."""
    return f"check_model:{model_name}:{interval_s:g}:{period_of(now, interval_s)}"

"""Periodic sweeps: beat sends one sweep task per tick; the sweep claims its period with a
unique key, then fans out one task per item (here: one evaluation per running rollout).

Two beats running by mistake send two sweeps per period: the second finds the period
claimed and does nothing, so nothing is evaluated twice. A sweep that dies after its claim
loses that period's fan-out, never doubles it; the next period evaluates again. Each
evaluation is also keyed by (rollout, period), so a redelivered evaluation decides once.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from api_client.contract import TaskName
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.models import utcnow
from storage.sweeps import claim_period, period_of
from workers.deployment.rollouts import IN_PROGRESS
from workers.runtime import runtime_for

log = logging.getLogger("cipml.scheduler")

ROLLOUTS = "rollouts"


@shared_task(name=TaskName.SWEEP_ROLLOUTS.value, bind=True)
def sweep_rollouts(self: Task, interval_s: float | None = None) -> dict[str, Any]:
    """``interval_s`` is beat's: the period is the tick's, whatever the worker's settings."""
    runtime = runtime_for(self.app)
    now = utcnow()
    period = period_of(now, interval_s or runtime.settings.rollout_interval_s)
    with transaction(runtime.sessions) as session:
        if not claim_period(session, ROLLOUTS, period, now):
            log.info("rollout sweep of period %d already claimed: skipped", period)
            return {"period": period, "claimed": False, "evaluations": 0}
        running = DeploymentRepository(session).active(IN_PROGRESS)
    tick = f"{ROLLOUTS}:{period}"
    for deployment in running:
        self.app.send_task(
            TaskName.EVALUATE_ROLLOUT.value,
            args=[{"model_name": deployment.model_name, "tick": tick}],
            queue="control",
        )
    log.info("rollout sweep of period %d: %d rollouts to evaluate", period, len(running))
    return {"period": period, "claimed": True, "evaluations": len(running)}

"""Celery tasks of the retraining loop (thin; the policy is in retraining.py and
retrain_triggers.py, the decision in retrain_decision.py). Workers load this module by
name, like the sweeps: the scheduler sits above them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlalchemy.orm import Session

from api_client.contract import TERMINAL_STATUSES, ErrorCode, JobStatus, Queue, TaskName
from api_client.retrain_params import (
    RetrainPolicyConfig,
    RetrainRequest,
    RetrainsRequest,
    SetRetrainPolicyRequest,
)
from scheduler.retrain_decision import decide_retrain as decide
from scheduler.retrain_triggers import check_triggers
from scheduler.retraining import (
    RetrainRefused,
    policy_of,
    retrain_view,
    trigger_retrain,
)
from scheduler.sweeps import SWEEP_RETRIES, claim_sweep
from storage.alerts import AlertRepository
from storage.db import transaction
from storage.errors import DatabaseUnavailable
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository
from storage.models import Job, utcnow
from storage.monitoring import MonitoringRepository
from storage.retrains import RetrainRepository
from workers.control.replies import parse_request, refused, reply
from workers.deployment.errors import ScoringError
from workers.deployment.resolve import require_model
from workers.runtime import runtime_for

log = logging.getLogger("cipml.retraining")
RETRAINING = "retraining"
OVERDUE_S = 60  # a pending delivery this far past its next attempt lost its task
UNAVAILABLE = "the database is unavailable; retry"


@shared_task(name=TaskName.CONSIDER_RETRAIN.value, bind=True, max_retries=5)
def consider_retrain(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    """Right after a check is stored: does the model's policy call for a retrain?"""
    check_job_id, model_name = str(payload["check_job_id"]), str(payload["model_name"])
    runtime = runtime_for(self.app)
    try:
        with transaction(runtime.sessions) as session:
            policy = policy_of(session, model_name)
            check = MonitoringRepository(session).by_job(check_job_id)
            if policy is None or not policy.enabled or check is None:
                return {"check_job_id": check_job_id, "retrain": None}
            version = ModelVersionRepository(session).require(check.version_id)
            triggers = check_triggers(check.result, policy, version.importances or [])
        if not triggers:
            return {"check_job_id": check_job_id, "retrain": None}
        outcome = trigger_retrain(
            runtime,
            self.app,
            model_name=model_name,
            trigger=triggers[0].kind,
            key=f"check:{check_job_id}",
            reason="; ".join(t.reason for t in triggers),
            numbers={t.kind: t.numbers for t in triggers},
            check_job_id=check_job_id,
        )
    except DatabaseUnavailable as exc:  # a restarting database: try again shortly
        raise self.retry(exc=exc, countdown=5) from exc
    except RetrainRefused as exc:
        log.warning("no retrain of %s after check %s: %s", model_name, check_job_id, exc.message)
        return {"check_job_id": check_job_id, "retrain": None, "refused": exc.code}
    return {"check_job_id": check_job_id, "retrain": outcome.retrain}


@shared_task(name=TaskName.DECIDE_RETRAIN.value, bind=True, max_retries=5)
def decide_retrain(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    """A retrain's training job ended: judge its version against the champion."""
    try:
        return decide(runtime_for(self.app), str(payload["job_id"]))
    except DatabaseUnavailable as exc:
        raise self.retry(exc=exc, countdown=5) from exc


@shared_task(name=TaskName.SWEEP_RETRAINING.value, bind=True, max_retries=SWEEP_RETRIES)
def sweep_retraining(
    self: Task, interval_s: float | None = None, period: int | None = None
) -> dict[str, Any]:
    """Once per period: scheduled retrains, decisions whose message was lost, and webhook
    deliveries whose next attempt is long overdue."""
    runtime = runtime_for(self.app)
    interval = interval_s or runtime.settings.retrain_interval_s
    claim = claim_sweep(self, RETRAINING, interval, period, _sweep_work)
    if not claim.claimed:
        return {"period": claim.period, "claimed": False}
    period, work = claim.period, claim.work
    scheduled = 0
    for model_name, policy_version, number in work.scheduled:
        try:
            trigger_retrain(
                runtime,
                self.app,
                model_name=model_name,
                trigger="schedule",
                key=f"schedule:{model_name}:{policy_version}:{number}",
                reason=f"scheduled: period {number} of the retrain policy set at {policy_version}",
            )
            scheduled += 1
        except RetrainRefused as exc:
            log.warning("scheduled retrain of %s refused: %s", model_name, exc.message)
    for job_id in work.undecided:
        self.app.send_task(
            TaskName.DECIDE_RETRAIN.value, args=[{"job_id": job_id}], queue=Queue.MONITORING.value
        )
    for delivery_id in work.overdue:
        self.app.send_task(
            TaskName.DELIVER_WEBHOOK.value,
            args=[{"delivery_id": delivery_id}],
            queue=Queue.MONITORING.value,
        )
    return {
        "period": period,
        "claimed": True,
        "scheduled": scheduled,
        "decisions": len(work.undecided),
        "webhooks": len(work.overdue),
    }


@dataclass(frozen=True)
class SweepWork:
    # (model, the policy's version, number of the period since): a changed policy counts
    # its periods afresh under new keys
    scheduled: list[tuple[str, str, int]]
    undecided: list[str]  # training jobs of open retrains that have ended
    overdue: list[str]  # webhook deliveries whose task was lost


def _sweep_work(session: Session, now: datetime) -> SweepWork:
    repository = RetrainRepository(session)
    scheduled = []
    for row in repository.policies():
        config = RetrainPolicyConfig.model_validate(row.config)
        if config.enabled and config.schedule_s:
            # Periods count from the policy's last change: the first comes one period later.
            number = int((now - row.updated_at).total_seconds() // config.schedule_s)
            if number >= 1:
                scheduled.append((row.model_name, f"{row.updated_at.timestamp():.0f}", number))
    jobs = JobRepository(session)
    undecided = [
        r.job_id
        for r in repository.open_all()
        if r.job_id is not None and _ended(jobs.get(r.job_id))
    ]
    overdue = [
        d.id
        for d in AlertRepository(session).overdue_deliveries(now - timedelta(seconds=OVERDUE_S))
    ]
    return SweepWork(scheduled, undecided, overdue)


def _ended(job: Job | None) -> bool:
    return job is not None and JobStatus(job.status) in TERMINAL_STATUSES


# ---------------------------------------------------------------- client calls


@shared_task(name=TaskName.SET_RETRAIN_POLICY.value, bind=True)
def set_retrain_policy(self: Task, payload: Any) -> dict[str, Any]:
    request = parse_request(SetRetrainPolicyRequest, payload)
    if isinstance(request, dict):
        return request
    config = request.policy.model_dump(mode="json") if request.policy is not None else None
    try:
        with transaction(runtime_for(self.app).sessions) as session:
            require_model(session, request.model_name)
            RetrainRepository(session).set_policy(
                request.model_name, config, request.actor or "client", utcnow()
            )
    except DatabaseUnavailable:
        return refused(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE)
    except ScoringError as exc:
        return refused(exc.code, exc.message)
    return reply(ok=True, data={"model_name": request.model_name, "policy": config})


@shared_task(name=TaskName.RETRAIN.value, bind=True)
def retrain(self: Task, payload: Any) -> dict[str, Any]:
    request = parse_request(RetrainRequest, payload)
    if isinstance(request, dict):
        return request
    key = request.key or self.request.id or "unkeyed"
    try:
        outcome = trigger_retrain(
            runtime_for(self.app),
            self.app,
            model_name=request.model_name,
            trigger="manual",
            key=f"manual:{request.model_name}:{key}",
            reason=f"{request.reason} (by {request.actor or 'client'})",
            window=request.window,
        )
    except DatabaseUnavailable:
        return refused(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE)
    except RetrainRefused as exc:
        return refused(exc.code, exc.message)
    return reply(ok=True, data={**outcome.retrain, "created": outcome.created})


@shared_task(name=TaskName.RETRAINS.value, bind=True)
def retrains(self: Task, payload: Any) -> dict[str, Any]:
    request = parse_request(RetrainsRequest, payload)
    if isinstance(request, dict):
        return request
    try:
        with transaction(runtime_for(self.app).sessions) as session:
            repository = RetrainRepository(session)
            rows = repository.recent(request.model_name, request.limit)
            counts = repository.coalesced_counts([r.id for r in rows])
            jobs = JobRepository(session)
            views = []
            for row in rows:
                view = retrain_view(row, counts.get(row.id, 0))
                job = jobs.get(row.job_id) if row.job_id else None
                view["job_status"] = job.status if job is not None else None
                views.append(view)
            policy = policy_of(session, request.model_name)
    except DatabaseUnavailable:
        return refused(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE)
    return reply(
        ok=True,
        data={
            "model_name": request.model_name,
            "policy": policy.model_dump(mode="json") if policy is not None else None,
            "retrains": views,
        },
    )

"""Celery tasks of the registry and of scoring (thin: the work is in plain modules).

Registry calls run on the ``control`` queue, predictions and outcomes on ``scoring``;
all answer at once with a ControlReply. Scoring a dataset, erasing a customer and
retention are jobs."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task, shared_task
from celery.signals import worker_process_shutdown
from pydantic import BaseModel

from api_client.client import job_id_for_key, submit_task_id
from api_client.contract import ErrorCode, TaskName, job_task_name
from api_client.deployment_params import (
    DeploymentRequest,
    DeployRequest,
    EvaluateRequest,
    RollbackRequest,
    ShadowReportRequest,
)
from api_client.registry_params import (
    AliasHistoryRequest,
    LineageRequest,
    PredictRequest,
    RecordOutcomesRequest,
    SetAliasRequest,
    VersionsRequest,
)
from api_client.schemas import SubmitRequest
from storage.errors import DatabaseUnavailable, NotFound
from storage.registry import InvalidTransition
from workers.control.replies import parse_request, refused, reply
from workers.deployment import (
    deployment_calls,
    forget_job,
    outcome_calls,
    registry_calls,
    retention_job,
    rollouts,
    score_dataset_job,
    shadow_report,
)
from workers.deployment.errors import ScoringError
from workers.deployment.predict import predict as predict_rows
from workers.deployment.services import ScoringServices, _services, scoring_services
from workers.jobs.lifecycle import JobTask, run_job
from workers.runtime import runtime_for

log = logging.getLogger("cipml.scoring")
R = TypeVar("R", bound=BaseModel)

UNAVAILABLE = "the registry database is unavailable right now; retry shortly"


def _answer(
    task: Task,
    payload: Any,
    model: type[R],
    call: Callable[[ScoringServices, R], dict[str, Any]],
) -> dict[str, Any]:
    """Parse, call, and turn every expected failure into a refusal with its code: the
    worker keeps serving whatever a request holds."""
    request = parse_request(model, payload)
    if isinstance(request, dict):
        return request
    try:
        return reply(ok=True, data=call(scoring_services(runtime_for(task.app)), request))
    except ScoringError as exc:
        return refused(exc.code, exc.message)
    except DatabaseUnavailable:
        return refused(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE)
    except NotFound as exc:
        return refused(ErrorCode.VERSION_NOT_FOUND, str(exc))
    except InvalidTransition as exc:
        return refused(ErrorCode.INVALID_TRANSITION, str(exc))


@shared_task(name=TaskName.VERSIONS.value, bind=True)
def versions(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, VersionsRequest, registry_calls.versions)


@shared_task(name=TaskName.LINEAGE.value, bind=True)
def lineage(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, LineageRequest, registry_calls.version_lineage)


@shared_task(name=TaskName.SET_ALIAS.value, bind=True)
def set_alias(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, SetAliasRequest, registry_calls.set_alias)


@shared_task(name=TaskName.ALIAS_HISTORY.value, bind=True)
def alias_history(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, AliasHistoryRequest, registry_calls.alias_history)


@shared_task(name=TaskName.PREDICT.value, bind=True)
def predict(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, PredictRequest, predict_rows)


@shared_task(name=TaskName.RECORD_OUTCOMES.value, bind=True)
def record_outcomes(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, RecordOutcomesRequest, outcome_calls.record_outcomes)


@shared_task(name=TaskName.DEPLOY.value, bind=True)
def deploy(self: Task, payload: Any) -> dict[str, Any]:
    answer = _answer(self, payload, DeployRequest, deployment_calls.deploy)
    data = answer.get("data") or {}
    if data.get("changed") and data.get("state") == rollouts.VERIFYING:
        # Blue-green checks its idle slot now rather than on the next beat tick.
        self.app.send_task(
            TaskName.EVALUATE_ROLLOUT.value,
            args=[{"model_name": data["model_name"], "tick": f"deploy:{data['revision']}"}],
            queue="control",
        )
    return answer


@shared_task(name=TaskName.ROLLBACK.value, bind=True)
def rollback(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, RollbackRequest, deployment_calls.rollback)


@shared_task(name=TaskName.DEPLOYMENT.value, bind=True)
def deployment(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, DeploymentRequest, deployment_calls.deployment_view)


@shared_task(name=TaskName.EVALUATE_ROLLOUT.value, bind=True)
def evaluate_rollout(self: Task, payload: Any) -> dict[str, Any]:
    """One rollout's tick: sent by the rollout sweep (tick = its period) or by a person."""

    def evaluate(services: ScoringServices, request: EvaluateRequest) -> dict[str, Any]:
        if request.tick is not None:
            return deployment_calls.evaluate_rollout(services, request.model_name, request.tick)
        tick = f"manual:{uuid.uuid4().hex}"
        return deployment_calls.evaluate_rollout(services, request.model_name, tick, "client")

    return _answer(self, payload, EvaluateRequest, evaluate)


@shared_task(name=TaskName.SHADOW_REPORT.value, bind=True)
def shadow(self: Task, payload: Any) -> dict[str, Any]:
    return _answer(self, payload, ShadowReportRequest, shadow_report.shadow_report)


@shared_task(name=job_task_name("score_dataset"), bind=True, base=JobTask)
def score_dataset(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, score_dataset_job.run_score_dataset)


@shared_task(name=job_task_name("forget_customer"), bind=True, base=JobTask)
def forget_customer(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, forget_job.run_forget_customer)


@shared_task(name=job_task_name("apply_retention"), bind=True, base=JobTask)
def apply_retention(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, retention_job.run_retention)


@shared_task(name=TaskName.RETENTION_TICK.value, bind=True, ignore_result=True)
def retention_tick(self: Task) -> str:
    """Beat's retention tick: submit this period's apply_retention job. The job id comes
    from the period, so a second beat (or a redelivered tick) finds the job already there."""
    interval = self.app.cipml_settings.retention_interval_s
    period = int(time.time() // interval)
    job_id = job_id_for_key(f"apply_retention:{interval:g}:{period}")
    request = SubmitRequest(
        job_id=job_id,
        job_type="apply_retention",
        params={},
        idempotency_key=f"apply_retention:{interval:g}:{period}",
    )
    self.app.send_task(
        TaskName.SUBMIT.value,
        args=[request.model_dump(mode="json")],
        queue="control",
        task_id=submit_task_id(job_id),
    )
    return job_id


@worker_process_shutdown.connect
def _flush_prediction_log(**_: Any) -> None:
    """A stopping worker process writes the predictions it still buffers."""
    for services in list(_services.values()):
        try:
            services.log_buffer.flush()
        except Exception:
            log.exception("could not flush the prediction log at shutdown")

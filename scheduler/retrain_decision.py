"""A retrain's decision, once its training job has ended: the new version (challenger)
against the champion on recent labelled rows that neither was trained on (the newest
share of the retrain's window), by workers/deployment/challenger.py; then promote it
(replace the champion, or start the policy's A/B test or canary) or reject it with the
numbers. A failed training ends the retrain ``failed`` with the job's error.

Idempotent: the retrain closes by compare-and-set from ``open``, and a repeated promote
redeploys the version that already serves (no change).
"""

from __future__ import annotations

import logging
from typing import Any

from api_client.contract import TERMINAL_STATUSES, JobStatus
from api_client.deployment_params import DeployRequest
from api_client.retrain_params import RetrainPolicyConfig
from api_client.train_params import TrainParams
from scheduler.retraining import ACTOR, policy_of
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository
from storage.models import ModelVersion, utcnow
from storage.retrains import OPEN, RetrainRepository
from workers.deployment.challenger_evaluation import compare_on_held_out_rows
from workers.deployment.deployment_calls import deploy
from workers.deployment.errors import ScoringError
from workers.deployment.resolve import version_for_alias
from workers.deployment.rollouts import IN_PROGRESS
from workers.deployment.services import scoring_services
from workers.runtime import Runtime

log = logging.getLogger("cipml.retraining")


def decide_retrain(runtime: Runtime, job_id: str) -> dict[str, Any]:
    """Decide the retrain whose training job is ``job_id`` (nothing when it is still
    training or was decided already)."""
    with transaction(runtime.sessions) as session:
        retrain = RetrainRepository(session).by_job(job_id)
        job = JobRepository(session).get(job_id)
        if retrain is None or job is None:
            return {"job_id": job_id, "decided": False, "why": "no retrain runs this job"}
        if retrain.status != OPEN:
            return {"job_id": job_id, "decided": False, "why": f"already {retrain.status}"}
        if JobStatus(job.status) not in TERMINAL_STATUSES:
            return {"job_id": job_id, "decided": False, "why": f"training is {job.status}"}
        retrain_id, model_name = retrain.id, retrain.model_name
        policy = policy_of(session, model_name) or RetrainPolicyConfig()
        if job.status != JobStatus.SUCCEEDED:
            decision = {
                "verdict": "failed",
                "message": f"the retrain's training ended {job.status}: "
                f"{job.error_code or ''} {job.error_message or ''}".strip(),
                "error_code": job.error_code,
            }
            return _close(runtime, retrain_id, "failed", decision, None)
        challenger = ModelVersionRepository(session).by_job(job_id)
        params = TrainParams.model_validate(job.params)
        try:
            champion = version_for_alias(session, model_name, "champion")
        except ScoringError as exc:
            decision = {"verdict": "reject", "message": exc.message}
            return _close(runtime, retrain_id, "rejected", decision, None)
        assert challenger is not None, "a succeeded train job registered a version"
        champion_id, challenger_id = champion.id, challenger.id
        window = params.labelled_window
        on_window = window is not None
        evaluation_id = window.evaluation_dataset_id if window is not None else None
    if champion_id == challenger_id:  # decided and promoted before a redelivery
        return _close(runtime, retrain_id, "promoted", {"verdict": "promote"}, challenger_id)
    result = compare_on_held_out_rows(
        runtime,
        champion_id,
        challenger_id,
        evaluation_id=evaluation_id,
        on_window=on_window,
        window=policy.window,
        decision=policy.decision,
    )
    view = {**result.to_json(), "champion_version_id": champion_id}
    if result.verdict != "promote":
        return _close(runtime, retrain_id, "rejected", view, challenger_id)
    return _promote(runtime, retrain_id, challenger, policy, view)


def _promote(
    runtime: Runtime,
    retrain_id: int,
    challenger: ModelVersion,
    policy: RetrainPolicyConfig,
    view: dict[str, Any],
) -> dict[str, Any]:
    mode = policy.decision.mode
    strategy = "immediate" if mode == "replace" else mode
    request = DeployRequest(
        model_name=challenger.model_name,
        version=challenger.version,
        strategy=strategy,
        config=policy.decision.rollout_config if mode != "replace" else {},
        reason=f"retrained challenger: {view.get('message')}",
        actor=ACTOR,
    )
    if mode != "replace" and _rolling_out(runtime, challenger):  # a redelivered decision
        return _close(runtime, retrain_id, "rollout", view, challenger.id)
    try:
        deployed = deploy(scoring_services(runtime), request)
    except ScoringError as exc:  # e.g. another rollout in progress: keep the champion
        view = {
            **view,
            "verdict": "reject",
            "deploy_error": {"code": exc.code, "message": exc.message},
        }
        return _close(runtime, retrain_id, "rejected", view, challenger.id)
    view = {**view, "deployed": {"strategy": strategy, "decision": deployed.get("decision")}}
    status = "promoted" if mode == "replace" else "rollout"
    return _close(runtime, retrain_id, status, view, challenger.id)


def _rolling_out(runtime: Runtime, version: ModelVersion) -> bool:
    """Whether the model's rollout in progress is already this version's (started by an
    earlier delivery of this decision)."""
    with transaction(runtime.sessions) as session:
        record = DeploymentRepository(session).get(version.model_name)
    return (
        record is not None
        and record.state in IN_PROGRESS
        and record.candidate_version_id == version.id
    )


def _close(
    runtime: Runtime,
    retrain_id: int,
    status: str,
    decision: dict[str, Any],
    version_id: int | None,
) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        closed = RetrainRepository(session).finish(
            retrain_id, status, decision, utcnow(), version_id=version_id
        )
    if closed:
        log.info(
            "retrain %d %s: %s",
            retrain_id,
            status,
            decision.get("message"),
            extra={"data": {"retrain_id": retrain_id, "status": status}},
        )
    return {"retrain_id": retrain_id, "decided": closed, "status": status, "decision": decision}

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
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from api_client.contract import TERMINAL_STATUSES, JobStatus
from api_client.deployment_params import DeployRequest
from api_client.retrain_params import RetrainPolicyConfig
from api_client.train_params import TrainParams
from scheduler.retraining import ACTOR, policy_of
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository
from storage.models import ModelVersion, utcnow
from storage.retrains import OPEN, RetrainRepository
from workers.deployment.challenger import ChallengerDecision, decide
from workers.deployment.deployment_calls import deploy
from workers.deployment.errors import ScoringError
from workers.deployment.model_inputs import to_model_frame
from workers.deployment.outputs import score_rows
from workers.deployment.resolve import version_for_alias
from workers.deployment.rollouts import IN_PROGRESS
from workers.deployment.services import scoring_services
from workers.deployment.serving import ServingVersion, pipeline_for
from workers.jobs.errors import JobError
from workers.monitoring.check_inputs import truth_values
from workers.runtime import Runtime
from workers.training.labelled_window import WindowTarget, labelled_window_frames

log = logging.getLogger("cipml.retraining")


@dataclass(frozen=True)
class Evaluation:
    y_true: np.ndarray
    champion: np.ndarray
    challenger: np.ndarray


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
    result = _compare(runtime, champion_id, challenger_id, on_window, evaluation_id, policy)
    view = {**result.to_json(), "champion_version_id": champion_id}
    if result.verdict != "promote":
        return _close(runtime, retrain_id, "rejected", view, challenger_id)
    return _promote(runtime, retrain_id, challenger, policy, view)


def _compare(
    runtime: Runtime,
    champion_id: int,
    challenger_id: int,
    on_window: bool,
    evaluation_id: int | None,
    policy: RetrainPolicyConfig,
) -> ChallengerDecision:
    with transaction(runtime.sessions) as session:
        versions = ModelVersionRepository(session)
        champion = ServingVersion.of(versions.require(champion_id))
        challenger = ServingVersion.of(versions.require(challenger_id))
        target = str(
            (versions.require(challenger_id).training.get("config") or {}).get("target") or "label"
        )
        if evaluation_id is not None:  # the window's newest rows, held out of training
            frame = _evaluation_dataset(runtime, session, evaluation_id)
        elif on_window:  # nothing was held out: no fair comparison (insufficient data)
            frame = pd.DataFrame()
        else:  # trained on a named dataset: judged on the newest labelled traffic
            frame = _recent_traffic(runtime, session, challenger, target, policy)
    evaluation = _evaluate(runtime, champion, challenger, frame, target)
    decision = policy.decision
    return decide(
        challenger.problem,
        evaluation.y_true,
        evaluation.champion,
        evaluation.challenger,
        min_improvement=decision.min_improvement,
        alpha=decision.alpha,
        min_rows=decision.min_rows,
    )


def _evaluation_dataset(runtime: Runtime, session: Session, dataset_id: int) -> pd.DataFrame:
    dataset = DatasetRepository(session).get(dataset_id)
    if dataset is None:
        return pd.DataFrame()
    with runtime.store.open_verified(dataset.stored_sha256) as handle:
        return pq.ParquetFile(handle).read().to_pandas()


def _recent_traffic(
    runtime: Runtime,
    session: Session,
    version: ServingVersion,
    target: str,
    policy: RetrainPolicyConfig,
) -> pd.DataFrame:
    """The newest ``evaluation_share`` of the model's labelled predictions of the policy's
    last ``window.days`` (empty when there are none: the decision says so)."""
    end = utcnow()
    try:
        frames = labelled_window_frames(
            session,
            scoring_services(runtime).log_store,
            version.model_name,
            _inputs(version),
            WindowTarget(target, version.problem, version.classes),
            end - timedelta(days=policy.window.days),
            end,
            policy.window.evaluation_share,
        )
    except JobError:  # no labelled traffic
        return pd.DataFrame()
    return frames.evaluation


def _evaluate(
    runtime: Runtime,
    champion: ServingVersion,
    challenger: ServingVersion,
    frame: pd.DataFrame,
    target: str,
) -> Evaluation:
    """Both versions' predictions on the labelled rows both can read."""
    needed = {target, *_inputs(champion), *_inputs(challenger)}
    if frame.empty or not needed <= set(frame.columns):
        empty = np.empty(0)
        return Evaluation(empty, empty, empty)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    y_true = truth_values(frame[target], challenger.problem, challenger.classes)
    return Evaluation(
        y_true, _predictions(runtime, champion, frame), _predictions(runtime, challenger, frame)
    )


def _predictions(runtime: Runtime, version: ServingVersion, frame: pd.DataFrame) -> np.ndarray:
    pipeline = pipeline_for(version, runtime.store, runtime.settings)
    inputs = to_model_frame(frame[_inputs(version)], version.input_schema)
    outputs = score_rows(pipeline, inputs, version)
    if version.problem == "multiclass":
        return np.asarray(outputs.label, dtype=object)
    return np.asarray(outputs.score, dtype=float)


def _inputs(version: ServingVersion) -> list[str]:
    return [str(field["name"]) for field in version.input_schema]


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

"""The retraining loop: a trigger becomes a retrain (one open per model; the others are
coalesced into it), the retrain is a ``train`` job of the champion's training config on a
fresh window under admission control, and its result is judged against the champion.

Everything is keyed so that a redelivered message or a second beat changes nothing: a
trigger by its key, the retrain's job by the retrain's id, the decision by a
compare-and-set on the retrain's status (and the deploy by the deployment's own).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from api_client.client import job_id_for_key
from api_client.contract import ErrorCode
from api_client.retrain_params import RetrainPolicyConfig, TrainingWindow
from api_client.schemas import SubmitRequest
from api_client.train_params import TrainParams
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.models import ModelVersion, Retrain, utcnow
from storage.retrains import OPEN, RetrainRepository
from workers.control.submissions import record_submission
from workers.deployment.errors import ScoringError
from workers.deployment.resolve import version_for_alias
from workers.jobs.admission import RETRAIN_KEY_PREFIX, admit_waiting
from workers.runtime import Runtime

log = logging.getLogger("cipml.retraining")
ACTOR = "retraining"


class RetrainRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class TriggerOutcome:
    retrain: dict[str, Any]
    created: bool


def policy_of(session: Session, model_name: str) -> RetrainPolicyConfig | None:
    row = RetrainRepository(session).policy(model_name)
    return RetrainPolicyConfig.model_validate(row.config) if row is not None else None


def trigger_retrain(
    runtime: Runtime,
    app: Celery,
    *,
    model_name: str,
    trigger: str,
    key: str,
    reason: str,
    numbers: dict[str, Any] | None = None,
    check_job_id: str | None = None,
    window: TrainingWindow | None = None,
) -> TriggerOutcome:
    """Record a trigger and, when it opens a retrain, submit its train job (WAITING for an
    admission slot) in the same transaction; then let admission start what fits."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        policy = policy_of(session, model_name) or RetrainPolicyConfig()
        try:
            champion = version_for_alias(session, model_name, "champion")
        except ScoringError as exc:
            raise RetrainRefused(exc.code, exc.message) from exc
        params = retrain_params(session, champion, window or policy.window, policy.n_trials)
        repository = RetrainRepository(session)
        retrain, created = repository.trigger(
            model_name=model_name,
            trigger=trigger,
            trigger_key=key,
            reason=reason,
            numbers=numbers or {},
            check_job_id=check_job_id,
            from_version_id=champion.id,
            at=now,
            cooldown_s=policy.cooldown_s if trigger not in ("manual", "schedule") else 0.0,
        )
        opened = created and retrain.status == OPEN
        if opened:
            job_key = f"{RETRAIN_KEY_PREFIX}{model_name}:{retrain.id}"
            job_id = job_id_for_key(job_key)
            request = SubmitRequest(
                job_id=job_id,
                job_type="train",
                params=params,
                idempotency_key=job_key,
                parent_id=check_job_id,  # the finding that triggered it
            )
            record_submission(session, request, None, {}, redelivered=False)
            repository.set_job(retrain.id, job_id)
            session.refresh(retrain)
        view = retrain_view(retrain)
    if created:
        log.info(
            "retrain trigger %s of %s: %s (%s)",
            trigger,
            model_name,
            view["status"],
            reason,
            extra={"data": {"model_name": model_name, "retrain_id": view["id"]}},
        )
    if opened:
        admit_waiting(runtime, app)
    return TriggerOutcome(view, created)


def retrain_params(
    session: Session, champion: ModelVersion, window: TrainingWindow, n_trials: int | None
) -> dict[str, Any]:
    """The champion's training config on a fresh window: the latest version of a named
    dataset, or the labelled predictions of the last ``window.days``."""
    config = dict(champion.training.get("config") or {})
    if not config:
        raise RetrainRefused(
            ErrorCode.NOT_RETRAINABLE,
            f"{champion.model_name} {champion.version} has no stored training config to reuse",
        )
    config["parent_version_id"] = champion.id
    if window.dataset is not None:
        dataset = DatasetRepository(session).latest(window.dataset)
        if dataset is None:
            raise RetrainRefused(
                ErrorCode.DATASET_NOT_FOUND,
                f"no dataset named {window.dataset!r} is registered to retrain on",
            )
        config["dataset_id"], config["labelled_window"] = dataset.id, None
    else:
        if champion.model_type == "segmentation":
            raise RetrainRefused(
                ErrorCode.NOT_RETRAINABLE,
                "segmentation learns without outcomes, so it cannot retrain on labelled "
                "predictions: give the policy a window.dataset to retrain on",
            )
        config["dataset_id"] = None
        config["labelled_window"] = {
            "days": window.days,
            "evaluation_share": window.evaluation_share,
            "min_rows": window.min_rows,
        }
    if n_trials is not None:
        config["optimization"] = {**(config.get("optimization") or {}), "n_trials": n_trials}
    try:
        return TrainParams.model_validate(config).model_dump(mode="json")
    except ValueError as exc:
        raise RetrainRefused(
            ErrorCode.NOT_RETRAINABLE, f"the stored training config no longer validates: {exc}"
        ) from None


def retrain_view(retrain: Retrain, coalesced: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": retrain.id,
        "model_name": retrain.model_name,
        "trigger": retrain.trigger,
        "reason": retrain.reason,
        "numbers": retrain.numbers,
        "status": retrain.status,
        "job_id": retrain.job_id,
        "check_job_id": retrain.check_job_id,
        "coalesced_into": retrain.coalesced_into,
        "from_version_id": retrain.from_version_id,
        "version_id": retrain.version_id,
        "decision": retrain.decision,
        "created_at": retrain.created_at.isoformat(),
        "decided_at": retrain.decided_at.isoformat() if retrain.decided_at else None,
    }
    if coalesced is not None:
        view["coalesced"] = coalesced
    return view

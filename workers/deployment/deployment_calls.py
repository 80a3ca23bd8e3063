"""Deployments answered at once: deploy, rollback, the deployment's view, and one rollout's
evaluation (what every scheduler tick runs).

The strategies decide (``rollouts.py``, pure); this module reads what they decide on,
stores the decision with compare-and-set, and keeps the champion alias on the version the
deployment serves. A decision is stored with the tick that made it, in one transaction,
so a redelivered or duplicated tick never decides twice.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api_client.contract import ErrorCode
from api_client.deployment_params import (
    ABTestConfig,
    BlueGreenConfig,
    CanaryConfig,
    DeploymentRequest,
    DeployRequest,
    RollbackRequest,
)
from storage.db import transaction
from storage.deployments import (
    ArmRecord,
    DeploymentConflict,
    DeploymentRecord,
    DeploymentRepository,
    EventRecord,
)
from storage.model_versions import ModelVersionRepository
from storage.models import utcnow
from storage.registry import AliasRepository
from workers.deployment import rollouts
from workers.deployment.champion import CHAMPION, move_champion
from workers.deployment.errors import ScoringError
from workers.deployment.observations import observe
from workers.deployment.resolve import require_model, require_version
from workers.deployment.rollout_types import (
    ArmSpec,
    NoStableVersion,
    NothingToRollBack,
    Observations,
    Rollout,
    RolloutConflict,
    SmokeResult,
    Transition,
)
from workers.deployment.services import ScoringServices
from workers.deployment.serving import ServingVersion, pipeline_for
from workers.deployment.smoke import smoke_test


def deploy(services: ScoringServices, request: DeployRequest) -> dict[str, Any]:
    """Start rolling ``request.version`` out. The version's artifact is verified first: a
    version that cannot load never takes traffic."""
    with transaction(services.sessions) as session:
        serving = ServingVersion.of(require_version(session, request.model_name, request.version))
    pipeline_for(serving, services.store, services.settings)
    now = utcnow()
    actor = request.actor or "client"
    with transaction(services.sessions) as session:
        repository = DeploymentRepository(session)
        record = repository.get(request.model_name)
        seen = record.revision if record is not None else 0
        if request.expected_revision is not None and request.expected_revision != seen:
            raise ScoringError(
                ErrorCode.DEPLOYMENT_CONFLICT,
                f"the deployment of {request.model_name!r} is at revision {seen}, not "
                f"{request.expected_revision}: read client.deployment() again and retry",
            )
        current = _rollout_of(record) if record is not None else _from_alias(session, request)
        try:
            transition = rollouts.start(
                request.model_name, request.strategy, request.config, serving.id, current, now
            )
        except RolloutConflict as exc:
            raise ScoringError(ErrorCode.DEPLOYMENT_CONFLICT, str(exc)) from exc
        except NoStableVersion as exc:
            raise ScoringError(ErrorCode.NO_STABLE_VERSION, str(exc)) from exc
        if record is None and current is not None and not transition.changed:
            # The champion alias already names this version: the model is now served
            # through a deployment, with nothing else changed.
            adopted = replace(current, started_at=now)
            reason = f"version {request.version} (the champion alias) serves all traffic"
            transition = Transition(adopted, rollouts.KIND_DEPLOYED, reason, {}, changed=True)
        transition = _named(session, transition)
        if transition.changed:
            generation = (record.rollout + 1) if record is not None else 1
            _store(session, record, transition, actor, request.reason, now, generation)
    view = deployment_view(services, DeploymentRequest(model_name=request.model_name, events=5))
    return {**view, "changed": transition.changed, "decision": transition.reason}


def rollback(services: ScoringServices, request: RollbackRequest) -> dict[str, Any]:
    now = utcnow()
    with transaction(services.sessions) as session:
        record = _require(session, request.model_name)
        try:
            transition = _named(session, rollouts.rollback(_rollout_of(record), now))
        except NothingToRollBack as exc:
            message = _named_text(str(exc), _version_names(session, request.model_name))
            raise ScoringError(ErrorCode.NOTHING_TO_ROLL_BACK, message) from exc
        _store(session, record, transition, request.actor or "client", request.reason, now)
    view = deployment_view(services, DeploymentRequest(model_name=request.model_name, events=5))
    return {**view, "decision": transition.reason}


def evaluate_rollout(
    services: ScoringServices, model_name: str, tick: str, actor: str = "scheduler"
) -> dict[str, Any]:
    """One tick of one rollout: observe its arms, decide, store the decision once per
    tick. A tick that finds the rollout ended, or already decided, changes nothing; a
    decision that changes nothing (a shadow running on) is counted, not stored. Two ticks
    of one rollout evaluated at once race on its revision: the loser decides again on
    what the winner stored."""
    for _ in range(_EVALUATION_ATTEMPTS - 1):
        try:
            return _evaluate_once(services, model_name, tick, actor)
        except ScoringError as exc:
            if exc.code != ErrorCode.DEPLOYMENT_CONFLICT:
                raise
    return _evaluate_once(services, model_name, tick, actor)


_EVALUATION_ATTEMPTS = 5


def _evaluate_once(
    services: ScoringServices, model_name: str, tick: str, actor: str
) -> dict[str, Any]:
    now = utcnow()
    with transaction(services.sessions) as session:
        record = _require(session, model_name)
    if record.state not in rollouts.IN_PROGRESS:
        return {"model_name": model_name, "tick": tick, "evaluated": False, "state": record.state}
    rollout = _rollout_of(record)
    observations, smoke = _observe(services, rollout, now)
    transition = rollouts.evaluate(rollout, observations, now, smoke)
    assert record.id is not None
    with transaction(services.sessions) as session:
        repository = DeploymentRepository(session)
        if not repository.claim_tick(record.id, tick, now):
            return {"model_name": model_name, "tick": tick, "evaluated": False, "duplicate": True}
        transition = _named(session, transition)
        if transition.kind != rollouts.KIND_NO_CHANGE:
            _store(session, record, transition, actor, transition.reason, now)
        repository.set_tick_kind(record.id, tick, transition.kind)
    return {
        "model_name": model_name,
        "tick": tick,
        "evaluated": True,
        "kind": transition.kind,
        "state": transition.rollout.state,
        "reason": transition.reason,
        "details": transition.details,
    }


def deployment_view(services: ScoringServices, request: DeploymentRequest) -> dict[str, Any]:
    with transaction(services.sessions) as session:
        record = _require(session, request.model_name)
        assert record.id is not None
        events = DeploymentRepository(session).events(record.id, limit=request.events)
        names = _version_names(session, request.model_name)
        return {
            "model_name": record.model_name,
            "strategy": record.strategy,
            "state": record.state,
            "in_progress": record.state in rollouts.IN_PROGRESS,
            "revision": record.revision,
            "rollout": record.rollout,
            "config": record.config,
            "arms": [_arm_view(arm, names) for arm in record.arms],
            "stable_version": names.get(record.stable_version_id or -1),
            "candidate_version": names.get(record.candidate_version_id or -1),
            "previous_version": names.get(record.previous_version_id or -1),
            "step": record.step,
            "started_at": record.started_at.isoformat(),
            "updated_at": record.updated_at.isoformat() if record.updated_at else None,
            "check_interval_s": record.check_interval_s,
            "events": [_event_view(event, names) for event in events],
        }


# ---------------------------------------------------------------------------- internals


def _observe(
    services: ScoringServices, rollout: Rollout, now: datetime
) -> tuple[Observations | None, SmokeResult | None]:
    if rollout.state == rollouts.VERIFYING:
        assert rollout.candidate_version_id is not None
        config = BlueGreenConfig.model_validate(rollout.config)
        smoke = smoke_test(
            services, rollout.candidate_version_id, config.smoke_rows, config.latency_budget_ms
        )
        return None, smoke
    if rollout.state == rollouts.CANARY:
        metric = CanaryConfig.model_validate(rollout.config).guardrails.metric
    elif rollout.state == rollouts.TESTING:
        metric = ABTestConfig.model_validate(rollout.config).metric
    else:
        return None, None
    services.log_buffer.flush()  # this process's own recent predictions count too
    with transaction(services.sessions) as session:
        return observe(session, services.log_store, rollout, metric, now), None


def _store(
    session: Session,
    record: DeploymentRecord | None,
    transition: Transition,
    actor: str,
    reason: str,
    now: datetime,
    generation: int | None = None,
) -> DeploymentRecord:
    """Save the transition with compare-and-set (a racing writer gets deployment_conflict)
    and move the champion alias when the stable version changed."""
    event = EventRecord(
        at=now,
        actor=actor,
        kind=transition.kind,
        reason=reason,
        details={"decision": transition.reason, **transition.details},
    )
    rollout = transition.rollout
    saved_record = _record_of(rollout, record, generation)
    try:
        saved = DeploymentRepository(session).save(saved_record, event)
    except DeploymentConflict as exc:
        raise ScoringError(
            ErrorCode.DEPLOYMENT_CONFLICT,
            f"{exc}; another change of {rollout.model_name!r} won: read client.deployment() "
            "and retry",
        ) from exc
    before = record.stable_version_id if record is not None else None
    if rollout.stable_version_id is not None and rollout.stable_version_id != before:
        move_champion(
            session,
            rollout.model_name,
            rollout.stable_version_id,
            actor=actor,
            reason=f"deployment: {transition.kind}",
        )
    return saved


def _require(session: Session, model_name: str) -> DeploymentRecord:
    record = DeploymentRepository(session).get(model_name)
    if record is None:
        require_model(session, model_name)  # model_not_found first
        raise ScoringError(
            ErrorCode.DEPLOYMENT_NOT_FOUND,
            f"{model_name!r} has no deployment yet; start one with "
            f"client.deploy({model_name!r}, version, strategy='immediate')",
        )
    return record


def _from_alias(session: Session, request: DeployRequest) -> Rollout | None:
    """A model served by its champion alias before its first deployment: that version is
    the stable one the new rollout starts from."""
    alias = AliasRepository(session).get(request.model_name, CHAMPION)
    if alias is None:
        return None
    return Rollout(
        model_name=request.model_name,
        strategy="immediate",
        state=rollouts.LIVE,
        config={},
        arms=(ArmSpec(CHAMPION, alias.version_id, 1.0),),
        stable_version_id=alias.version_id,
        candidate_version_id=None,
        previous_version_id=None,
        step=0,
        step_started_at=None,
        started_at=alias.updated_at,
        memory={},
    )


def _rollout_of(record: DeploymentRecord) -> Rollout:
    return Rollout(
        model_name=record.model_name,
        strategy=record.strategy,
        state=record.state,
        config=dict(record.config),
        arms=tuple(ArmSpec(arm.role, arm.version_id, arm.weight) for arm in record.arms),
        stable_version_id=record.stable_version_id,
        candidate_version_id=record.candidate_version_id,
        previous_version_id=record.previous_version_id,
        step=record.step,
        step_started_at=record.step_started_at,
        started_at=record.started_at,
        memory=dict(record.memory),
    )


def _record_of(
    rollout: Rollout, record: DeploymentRecord | None, generation: int | None
) -> DeploymentRecord:
    fields: dict[str, Any] = {
        "strategy": rollout.strategy,
        "state": rollout.state,
        "config": rollout.config,
        "arms": tuple(ArmRecord(arm.role, arm.version_id, arm.weight) for arm in rollout.arms),
        "stable_version_id": rollout.stable_version_id,
        "candidate_version_id": rollout.candidate_version_id,
        "previous_version_id": rollout.previous_version_id,
        "step": rollout.step,
        "step_started_at": rollout.step_started_at,
        "started_at": rollout.started_at,
        "memory": rollout.memory,
    }
    if record is None:
        return DeploymentRecord(model_name=rollout.model_name, rollout=1, **fields)
    return replace(record, rollout=generation or record.rollout, **fields)


_VERSION_ID = re.compile(r"\bversion (\d+)\b(?!\.\d)")


def _named(session: Session, transition: Transition) -> Transition:
    """The strategies name versions by id (they see no registry); people read semantic
    versions, so the decision's sentence gets them."""
    names = _version_names(session, transition.rollout.model_name)
    return replace(transition, reason=_named_text(transition.reason, names))


def _named_text(text: str, names: dict[int, str]) -> str:
    return _VERSION_ID.sub(lambda m: f"version {names.get(int(m[1]), m[1])}", text)


def _version_names(session: Session, model_name: str) -> dict[int, str]:
    return {row.id: row.version for row in ModelVersionRepository(session).versions(model_name)}


def _arm_view(arm: ArmRecord, names: dict[int, str]) -> dict[str, Any]:
    return {"role": arm.role, "version": names.get(arm.version_id), "weight": arm.weight}


def _event_view(event: EventRecord, names: dict[int, str]) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "kind": event.kind,
        "reason": event.reason,
        "state": event.state,
        "rollout": event.rollout,
        "revision": event.revision,
        "arms": [_arm_view(arm, names) for arm in event.arms],
        "details": event.details,
    }

"""Rollout strategies as pure state machines: a ``Rollout`` in, a ``Transition`` out.

No I/O and no clock: the task reads the logs into ``Observations``, passes ``now`` (an
aware UTC datetime) and stores what comes back. ``start`` begins a rollout, ``evaluate``
is one scheduler tick of a rollout in progress, ``rollback`` undoes one.

States: ``LIVE`` (one champion serves 100%), the in-progress ``VERIFYING`` (blue-green
candidate checked in the idle slot), ``CANARY``, ``TESTING`` (A/B) and ``SHADOWING``, and
the ended ``ROLLED_BACK``, ``REJECTED`` and ``VERIFICATION_FAILED`` (the stable version
serves 100%). ``candidate_version_id`` keeps the version a rollout concerned after it ends,
for the record; ``previous_version_id`` is what ``rollback()`` of a live version returns to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from api_client.deployment_params import ABTestConfig, CanaryConfig, validate_config
from workers.deployment.ab_test import ab_tick
from workers.deployment.canary import canary_tick, duration_text, percent
from workers.deployment.rollout_types import CANARY as CANARY_ROLE
from workers.deployment.rollout_types import (
    CHALLENGER,
    CHAMPION,
    SHADOW,
    ArmSpec,
    NoStableVersion,
    NothingToRollBack,
    Observations,
    Rollout,
    RolloutConflict,
    SmokeResult,
    Transition,
)
from workers.deployment.sequential import SequentialState

# States.
LIVE = "live"
VERIFYING = "verifying"
CANARY = "canary"
TESTING = "testing"
SHADOWING = "shadowing"
ROLLED_BACK = "rolled_back"
REJECTED = "rejected"
VERIFICATION_FAILED = "verification_failed"
IN_PROGRESS = frozenset({VERIFYING, CANARY, TESTING, SHADOWING})
ENDED = frozenset({ROLLED_BACK, REJECTED, VERIFICATION_FAILED})
STATES = frozenset({LIVE}) | IN_PROGRESS | ENDED

# Event kinds (Transition.kind).
KIND_DEPLOYED = "deployed"
KIND_ALREADY_DEPLOYED = "already_deployed"
KIND_VERIFYING = "verifying"
KIND_CANARY_STARTED = "canary_started"
KIND_AB_STARTED = "ab_started"
KIND_SHADOW_STARTED = "shadow_started"
KIND_SWITCHED = "switched"
KIND_VERIFICATION_FAILED = "verification_failed"
KIND_WAITING = "waiting"
KIND_STEP_ADVANCED = "step_advanced"
KIND_PROMOTED = "promoted"
KIND_ROLLED_BACK = "rolled_back"
KIND_EXTENDED = "extended"
KIND_REJECTED = "rejected"
KIND_NO_CHANGE = "no_change"
EVENT_KINDS = (
    KIND_DEPLOYED,
    KIND_ALREADY_DEPLOYED,
    KIND_VERIFYING,
    KIND_CANARY_STARTED,
    KIND_AB_STARTED,
    KIND_SHADOW_STARTED,
    KIND_SWITCHED,
    KIND_VERIFICATION_FAILED,
    KIND_WAITING,
    KIND_STEP_ADVANCED,
    KIND_PROMOTED,
    KIND_ROLLED_BACK,
    KIND_EXTENDED,
    KIND_REJECTED,
    KIND_NO_CHANGE,
)

# Keys of Rollout.memory.
METRIC_STATE = "metric_state"  # canary: the guardrail metric's sequential state
AB_STATE = "sequential"  # A/B: the sequential test's state
LAST_DECISION = "last_decision"  # A/B: action and time of the latest decision

_STATE_OF_STRATEGY = {
    "blue_green": (VERIFYING, KIND_VERIFYING),
    "canary": (CANARY, KIND_CANARY_STARTED),
    "ab_test": (TESTING, KIND_AB_STARTED),
    "shadow": (SHADOWING, KIND_SHADOW_STARTED),
}


# ---------------------------------------------------------------------------- helpers


def routed_arms(arms: Iterable[ArmSpec]) -> list[ArmSpec]:
    """The arms that take routed traffic: weight > 0, shadow arms excluded."""
    return [arm for arm in arms if arm.role != SHADOW and arm.weight > 0]


def shadow_arms(arms: Iterable[ArmSpec]) -> list[ArmSpec]:
    """The arms that score every routed row without serving it."""
    return [arm for arm in arms if arm.role == SHADOW]


def _champion(version_id: int) -> tuple[ArmSpec, ...]:
    return (ArmSpec(CHAMPION, version_id, 1.0),)


def _canary_arms(stable: int, candidate: int, share: float) -> tuple[ArmSpec, ...]:
    return (ArmSpec(CHAMPION, stable, 1.0 - share), ArmSpec(CANARY_ROLE, candidate, share))


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made plain and NaN/inf replaced by None."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def _transition(
    rollout: Rollout, kind: str, reason: str, details: dict[str, Any], *, changed: bool
) -> Transition:
    return Transition(rollout, kind, reason, jsonable(details), changed)


def _no_change(rollout: Rollout) -> Transition:
    reason = f"{rollout.model_name!r} is {rollout.state}: nothing to evaluate"
    return _transition(rollout, KIND_NO_CHANGE, reason, {"state": rollout.state}, changed=False)


def _ended(rollout: Rollout, state: str) -> Rollout:
    """The stable version back on 100% (the rollout's candidate kept for the record)."""
    assert rollout.stable_version_id is not None
    return replace(rollout, arms=_champion(rollout.stable_version_id), state=state)


def _promoted(rollout: Rollout) -> Rollout:
    """The candidate on 100% as the new stable; the old stable is what rollback() returns to."""
    assert rollout.candidate_version_id is not None
    return replace(
        rollout,
        arms=_champion(rollout.candidate_version_id),
        stable_version_id=rollout.candidate_version_id,
        previous_version_id=rollout.stable_version_id,
        state=LIVE,
    )


# ---------------------------------------------------------------------------- start


def start(
    model_name: str,
    strategy: str,
    config: dict[str, Any],
    version_id: int,
    current: Rollout | None,
    now: datetime,
) -> Transition:
    """Begin rolling ``version_id`` out with ``strategy`` (ValueError on an invalid config,
    RolloutConflict while another rollout is in progress, NoStableVersion when the strategy
    needs a version serving already)."""
    config = validate_config(strategy, config)
    if current is not None and current.model_name != model_name:
        raise ValueError(f"the rollout given is of {current.model_name!r}, not {model_name!r}")
    if current is not None and current.state in IN_PROGRESS:
        return _repeat_or_conflict(current, strategy, version_id)
    if current is not None and version_id == current.stable_version_id:
        reason = f"version {version_id} of {model_name!r} already serves all traffic"
        details = {"version_id": version_id, "state": current.state}
        return _transition(current, KIND_ALREADY_DEPLOYED, reason, details, changed=False)
    if strategy == "immediate":
        return _start_immediate(model_name, config, version_id, current, now)
    if current is None or current.stable_version_id is None:
        raise NoStableVersion(
            f"{model_name!r} has no version serving, so a {strategy} rollout has nothing to "
            "compare with: deploy a version with strategy 'immediate' first"
        )
    stable = current.stable_version_id
    arms, reason = _starting_arms(strategy, config, stable, version_id)
    state, kind = _STATE_OF_STRATEGY[strategy]
    rollout = Rollout(
        model_name=model_name,
        strategy=strategy,
        state=state,
        config=config,
        arms=arms,
        stable_version_id=stable,
        candidate_version_id=version_id,
        previous_version_id=current.previous_version_id,
        step=0,
        step_started_at=now if strategy == "canary" else None,
        started_at=now,
        memory={},
    )
    details = {
        "version_id": version_id,
        "strategy": strategy,
        "stable_version_id": stable,
        "arms": _arms_json(arms),
    }
    return _transition(rollout, kind, reason, details, changed=True)


def _start_immediate(
    model_name: str, config: dict[str, Any], version_id: int, current: Rollout | None, now: datetime
) -> Transition:
    stable = current.stable_version_id if current is not None else None
    rollout = Rollout(
        model_name=model_name,
        strategy="immediate",
        state=LIVE,
        config=config,
        arms=_champion(version_id),
        stable_version_id=version_id,
        candidate_version_id=version_id,
        previous_version_id=stable,
        step=0,
        step_started_at=None,
        started_at=now,
        memory={},
    )
    was = f"was version {stable}" if stable is not None else "first deploy"
    reason = f"version {version_id} of {model_name!r} serves all traffic ({was})"
    details = {"version_id": version_id, "strategy": "immediate", "previous_version_id": stable}
    return _transition(rollout, KIND_DEPLOYED, reason, details, changed=True)


def _starting_arms(
    strategy: str, config: dict[str, Any], stable: int, version_id: int
) -> tuple[tuple[ArmSpec, ...], str]:
    """The arms a blue-green, canary, A/B or shadow rollout starts with, and why."""
    if strategy == "canary":
        share = CanaryConfig.model_validate(config).steps[0]
        reason = f"canary of version {version_id} started at {percent(share)} of traffic"
        return _canary_arms(stable, version_id, share), reason
    if strategy == "ab_test":
        traffic = ABTestConfig.model_validate(config).traffic
        arms = (
            ArmSpec(CHAMPION, stable, traffic["champion"]),
            ArmSpec(CHALLENGER, version_id, traffic["challenger"]),
        )
        reason = (
            f"A/B test of version {version_id} (challenger, {percent(traffic['challenger'])}) "
            f"against version {stable} (champion, {percent(traffic['champion'])}) started"
        )
        return arms, reason
    if strategy == "shadow":
        arms = (ArmSpec(CHAMPION, stable, 1.0), ArmSpec(SHADOW, version_id, 0.0))
        return arms, f"version {version_id} shadows version {stable}: scored and logged only"
    reason = f"version {version_id} is verified in the idle slot while version {stable} serves"
    return _champion(stable), reason


def _repeat_or_conflict(current: Rollout, strategy: str, version_id: int) -> Transition:
    if current.strategy == strategy and current.candidate_version_id == version_id:
        reason = (
            f"a {strategy} rollout of version {version_id} of {current.model_name!r} is "
            f"already in progress ({current.state})"
        )
        details = {"version_id": version_id, "state": current.state}
        return _transition(current, KIND_ALREADY_DEPLOYED, reason, details, changed=False)
    raise RolloutConflict(
        f"{current.model_name!r} has a {current.strategy} rollout of version "
        f"{current.candidate_version_id} in progress ({current.state}); rollback() it or wait "
        f"for it to end before deploying version {version_id} with {strategy!r}"
    )


# ---------------------------------------------------------------------------- evaluate


def evaluate(
    rollout: Rollout,
    observations: Observations | None,
    now: datetime,
    smoke: SmokeResult | None = None,
) -> Transition:
    """One scheduler tick: decide on what was observed (``smoke`` for blue-green)."""
    if rollout.state == VERIFYING:
        return _evaluate_blue_green(rollout, smoke)
    if rollout.state == CANARY:
        return _evaluate_canary(rollout, observations, now)
    if rollout.state == TESTING:
        return _evaluate_ab(rollout, observations, now)
    return _no_change(rollout)


def _evaluate_blue_green(rollout: Rollout, smoke: SmokeResult | None) -> Transition:
    candidate, stable = rollout.candidate_version_id, rollout.stable_version_id
    if smoke is None:
        reason = f"waiting for the smoke test of version {candidate} in the idle slot"
        return _transition(rollout, KIND_WAITING, reason, {}, changed=False)
    details = {
        "ok": smoke.ok,
        "rows": smoke.rows,
        "errors": smoke.errors,
        "latency_ms": smoke.latency_ms,
        "message": smoke.message,
    }
    numbers = f"{smoke.rows} rows, {smoke.errors} errors, {smoke.latency_ms:.0f} ms"
    if smoke.ok:
        reason = f"switched from version {stable} to version {candidate} ({numbers})"
        return _transition(_promoted(rollout), KIND_SWITCHED, reason, details, changed=True)
    reason = (
        f"version {candidate} failed its smoke test ({numbers}: {smoke.message}); "
        f"version {stable} keeps serving"
    )
    failed = replace(rollout, state=VERIFICATION_FAILED)
    return _transition(failed, KIND_VERIFICATION_FAILED, reason, details, changed=True)


def _evaluate_canary(
    rollout: Rollout, observations: Observations | None, now: datetime
) -> Transition:
    config = CanaryConfig.model_validate(rollout.config)
    candidate, stable = rollout.candidate_version_id, rollout.stable_version_id
    if observations is None:
        share = config.steps[rollout.step]
        reason = f"waiting: no observations of the canary at {percent(share)} yet"
        return _transition(rollout, KIND_WAITING, reason, {"step": rollout.step}, changed=False)
    tick = canary_tick(
        config,
        rollout.step,
        observations,
        stable_version_id=stable,
        canary_version_id=candidate,
        step_elapsed_s=(now - (rollout.step_started_at or rollout.started_at)).total_seconds(),
        metric_state=SequentialState.from_json(rollout.memory.get(METRIC_STATE)),
    )
    memory = {**rollout.memory, METRIC_STATE: tick.metric_state.to_json()}
    rollout = replace(rollout, memory=jsonable(memory))
    if tick.action == "rollback":
        reason = f"rolled back from version {candidate} to version {stable} {tick.reason}"
        ended = _ended(rollout, ROLLED_BACK)
        return _transition(ended, KIND_ROLLED_BACK, reason, tick.details, changed=True)
    if tick.action == "wait":
        return _transition(
            rollout, KIND_WAITING, f"waiting: {tick.reason}", tick.details, changed=False
        )
    if tick.action == "promote":
        reason = f"promoted version {candidate} over version {stable}: {tick.reason}"
        return _transition(_promoted(rollout), KIND_PROMOTED, reason, tick.details, changed=True)
    assert stable is not None and candidate is not None
    step = rollout.step + 1
    advanced = replace(
        rollout,
        step=step,
        step_started_at=now,
        arms=_canary_arms(stable, candidate, config.steps[step]),
    )
    reason = f"canary of version {candidate}: {tick.reason}"
    return _transition(advanced, KIND_STEP_ADVANCED, reason, tick.details, changed=True)


def _evaluate_ab(rollout: Rollout, observations: Observations | None, now: datetime) -> Transition:
    elapsed = (now - rollout.started_at).total_seconds()
    if observations is None:
        reason = f"waiting: no observations of the A/B test yet ({duration_text(elapsed)} in)"
        return _transition(rollout, KIND_WAITING, reason, {"elapsed_s": elapsed}, changed=False)
    tick = ab_tick(
        ABTestConfig.model_validate(rollout.config),
        observations,
        champion_version_id=rollout.stable_version_id,
        challenger_version_id=rollout.candidate_version_id,
        elapsed_s=elapsed,
        previous=SequentialState.from_json(rollout.memory.get(AB_STATE)),
    )
    decision = tick.decision
    memory = {
        **rollout.memory,
        AB_STATE: decision.state.to_json(),
        LAST_DECISION: {"action": decision.action, "at": now.isoformat()},
    }
    rollout = replace(rollout, memory=jsonable(memory))
    candidate, stable = rollout.candidate_version_id, rollout.stable_version_id
    if decision.action == "promote":
        reason = f"promoted version {candidate} over version {stable}: {decision.reason}"
        return _transition(_promoted(rollout), KIND_PROMOTED, reason, tick.details, changed=True)
    if decision.action == "reject":
        reason = (
            f"rejected version {candidate}; version {stable} serves all traffic: {decision.reason}"
        )
        ended = _ended(rollout, REJECTED)
        return _transition(ended, KIND_REJECTED, reason, tick.details, changed=True)
    reason = f"extended ({duration_text(elapsed)} in): {decision.reason}"
    return _transition(rollout, KIND_EXTENDED, reason, tick.details, changed=False)


# ---------------------------------------------------------------------------- rollback


def rollback(rollout: Rollout, now: datetime) -> Transition:
    """Undo: end a rollout in progress, or put the previous version back on 100%
    (NothingToRollBack when there is neither)."""
    stable, candidate = rollout.stable_version_id, rollout.candidate_version_id
    details: dict[str, Any] = {
        "state_before": rollout.state,
        "at": now.isoformat(),
        "elapsed_s": (now - rollout.started_at).total_seconds(),
    }
    if rollout.state in (CANARY, TESTING, VERIFYING):
        ended = _ended(rollout, ROLLED_BACK)
        what = {CANARY: "canary", TESTING: "A/B test", VERIFYING: "blue-green verification"}
        reason = (
            f"rolled back the {what[rollout.state]} from version {candidate} to version "
            f"{stable}, which serves all traffic"
        )
        details |= {"from_version_id": candidate, "to_version_id": stable}
        if rollout.state == CANARY:
            details |= {"step": rollout.step, "arms_before": _arms_json(rollout.arms)}
        return _transition(ended, KIND_ROLLED_BACK, reason, details, changed=True)
    if rollout.state == SHADOWING:
        live = replace(rollout, arms=tuple(routed_arms(rollout.arms)), state=LIVE)
        reason = f"stopped shadowing version {candidate}; version {stable} serves as before"
        details |= {"from_version_id": candidate, "to_version_id": stable}
        return _transition(live, KIND_ROLLED_BACK, reason, details, changed=True)
    if rollout.state in ENDED:
        # The rollout already ended and undid itself: rolling back again would move off
        # the version that serves now, a change nobody asked for.
        raise NothingToRollBack(
            f"the {rollout.strategy} rollout of version {candidate} of {rollout.model_name!r} "
            f"already ended ({rollout.state}) with version {stable} serving all traffic; "
            "deploy the version you want with strategy 'immediate'"
        )
    previous = rollout.previous_version_id
    if previous is None:
        raise NothingToRollBack(
            f"{rollout.model_name!r} has nothing to roll back: no rollout is in progress and "
            f"no version before version {stable} is recorded (rollback() goes back one "
            "version, once); deploy the version you want with strategy 'immediate'"
        )
    back = replace(
        rollout,
        arms=_champion(previous),
        stable_version_id=previous,
        previous_version_id=None,
        candidate_version_id=None,
        state=ROLLED_BACK,
    )
    reason = f"rolled back from version {stable} to version {previous}, which serves all traffic"
    details |= {"from_version_id": stable, "to_version_id": previous}
    return _transition(back, KIND_ROLLED_BACK, reason, details, changed=True)


def _arms_json(arms: Iterable[ArmSpec]) -> list[dict[str, Any]]:
    return [{"role": a.role, "version_id": a.version_id, "weight": a.weight} for a in arms]

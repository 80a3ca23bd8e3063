"""Deployments: how each model's traffic is split over its versions now, saved by
compare-and-set on a revision (of two racing controllers one wins, the other gets a
conflict), every save recorded as an event with the arms it left; rollout ticks claimed
once, so a duplicate evaluation does nothing."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from storage.db import insert_for
from storage.errors import Conflict
from storage.models import Deployment, DeploymentArm, DeploymentEvent, RolloutTick
from storage.registry import _read

# Core tables: reads and writes of plain rows, so no identity map can hand back a stale
# revision.
_DEPLOYMENTS = cast(Table, Deployment.__table__)
_ARMS = cast(Table, DeploymentArm.__table__)
_EVENTS = cast(Table, DeploymentEvent.__table__)
_TICKS = cast(Table, RolloutTick.__table__)


@dataclass(frozen=True)
class ArmRecord:
    role: str
    version_id: int
    weight: float


@dataclass(frozen=True)
class DeploymentRecord:
    model_name: str
    strategy: str
    state: str
    config: dict[str, Any]
    arms: tuple[ArmRecord, ...]
    stable_version_id: int | None
    candidate_version_id: int | None
    previous_version_id: int | None
    step: int
    step_started_at: datetime | None
    started_at: datetime
    memory: dict[str, Any]
    rollout: int
    revision: int = 0  # 0: never saved
    id: int | None = None
    updated_at: datetime | None = None
    check_interval_s: float | None = None  # monitoring's override; saves leave it as is


@dataclass(frozen=True)
class EventRecord:
    at: datetime
    actor: str
    kind: str
    reason: str
    details: dict[str, Any]
    # Filled by the repository when read back.
    arms: tuple[ArmRecord, ...] = ()
    state: str = ""
    rollout: int = 0
    revision: int = 0
    id: int | None = None


class DeploymentConflict(Conflict):
    """The deployment was saved (or created) by someone else since it was read: read it
    again and retry."""

    code = "deployment_conflict"


class DeploymentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, model_name: str) -> DeploymentRecord | None:
        return self._one(_DEPLOYMENTS.c.model_name == model_name)

    def get_by_id(self, deployment_id: int) -> DeploymentRecord | None:
        return self._one(_DEPLOYMENTS.c.id == deployment_id)

    def active(self, states: Collection[str]) -> list[DeploymentRecord]:
        """The deployments whose state is one of ``states``, by id."""
        if not states:
            return []
        rows = self.session.execute(
            select(_DEPLOYMENTS)
            .where(_DEPLOYMENTS.c.state.in_(list(states)))
            .order_by(_DEPLOYMENTS.c.id)
        ).all()
        arms = self._arms_of([row.id for row in rows])
        return [_record(row, arms.get(row.id, ())) for row in rows]

    def save(self, record: DeploymentRecord, event: EventRecord) -> DeploymentRecord:
        """Insert (``record.id`` None) or update the deployment if it is still at
        ``record.revision``; replace its arms and append ``event``. Returns the saved
        record at its new revision. A lost race raises DeploymentConflict having written
        nothing, so the caller's transaction goes on."""
        arms = _sorted_arms(record.arms)
        revision = record.revision + 1
        values = _values(record, revision, event.at)
        if record.id is None:
            if record.revision != 0:
                raise ValueError("a deployment without an id must be at revision 0")
            deployment_id = self._insert(record.model_name, values)
        else:
            self._update(record.model_name, record.id, record.revision, values)
            deployment_id = record.id
        self._replace_arms(deployment_id, arms)
        self.session.execute(
            insert(_EVENTS).values(
                deployment_id=deployment_id,
                rollout=record.rollout,
                revision=revision,
                at=event.at,
                actor=event.actor,
                kind=event.kind,
                reason=event.reason,
                details=event.details,
                arms=[_arm_json(arm) for arm in arms],
                state=record.state,
            )
        )
        return replace(record, arms=arms, id=deployment_id, revision=revision, updated_at=event.at)

    def events(self, deployment_id: int, limit: int | None = None) -> list[EventRecord]:
        """The deployment's events oldest first; with ``limit``, only the latest ones."""
        query = select(_EVENTS).where(_EVENTS.c.deployment_id == deployment_id)
        if limit is None:
            rows = self.session.execute(query.order_by(_EVENTS.c.id)).all()
        else:
            latest = query.order_by(_EVENTS.c.id.desc()).limit(limit)
            rows = list(reversed(self.session.execute(latest).all()))
        return [_event(row) for row in rows]

    def set_check_interval(self, model_name: str, seconds: float | None) -> bool:
        """Monitoring's interval for this model (None: the default); False when the model
        has no deployment."""
        result = self.session.execute(
            update(_DEPLOYMENTS)
            .where(_DEPLOYMENTS.c.model_name == model_name)
            .values(check_interval_s=seconds)
        )
        return _rowcount(result) == 1

    def claim_tick(self, deployment_id: int, tick: str, at: datetime) -> bool:
        """Claim evaluation ``tick``: True for the one call that inserted it."""
        # RETURNING, not rowcount: SQLAlchemy does not keep an INSERT's rowcount on PostgreSQL.
        claimed = self.session.execute(
            insert_for(self.session, RolloutTick)
            .values(deployment_id=deployment_id, tick=tick, at=at)
            .on_conflict_do_nothing(index_elements=["deployment_id", "tick"])
            .returning(RolloutTick.tick)
        ).first()
        return claimed is not None

    def set_tick_kind(self, deployment_id: int, tick: str, kind: str) -> None:
        self.session.execute(
            update(_TICKS)
            .where(_TICKS.c.deployment_id == deployment_id, _TICKS.c.tick == tick)
            .values(kind=kind)
        )

    def tick_count(self, deployment_id: int) -> int:
        count = self.session.scalar(
            select(func.count()).where(_TICKS.c.deployment_id == deployment_id)
        )
        return int(count or 0)

    # ------------------------------------------------------------------ internals

    def _one(self, where: Any) -> DeploymentRecord | None:
        row = self.session.execute(select(_DEPLOYMENTS).where(where)).first()
        if row is None:
            return None
        return _record(row, self._arms_of([row.id]).get(row.id, ()))

    def _arms_of(self, deployment_ids: Sequence[int]) -> dict[int, tuple[ArmRecord, ...]]:
        if not deployment_ids:
            return {}
        rows = self.session.execute(
            select(_ARMS.c.deployment_id, _ARMS.c.role, _ARMS.c.version_id, _ARMS.c.weight).where(
                _ARMS.c.deployment_id.in_(deployment_ids)
            )
        ).all()
        grouped: dict[int, list[ArmRecord]] = {}
        for row in rows:
            grouped.setdefault(row.deployment_id, []).append(_arm(row))
        return {key: _sorted_arms(arms) for key, arms in grouped.items()}

    def _insert(self, model_name: str, values: dict[str, Any]) -> int:
        # DO NOTHING rather than an IntegrityError: a lost race to create the model's
        # deployment must not abort the caller's transaction on PostgreSQL.
        inserted = self.session.execute(
            insert_for(self.session, Deployment)
            .values(model_name=model_name, **values)
            .on_conflict_do_nothing(index_elements=["model_name"])
            .returning(Deployment.id)
        ).scalar()
        if inserted is None:
            raise self._conflict(model_name, 0)
        return int(inserted)

    def _update(
        self, model_name: str, deployment_id: int, seen: int, values: dict[str, Any]
    ) -> None:
        result = self.session.execute(
            update(_DEPLOYMENTS)
            .where(_DEPLOYMENTS.c.id == deployment_id, _DEPLOYMENTS.c.revision == seen)
            .values(**values)
        )
        if _rowcount(result) != 1:
            raise self._conflict(model_name, seen)

    def _replace_arms(self, deployment_id: int, arms: Iterable[ArmRecord]) -> None:
        self.session.execute(delete(_ARMS).where(_ARMS.c.deployment_id == deployment_id))
        rows = [{"deployment_id": deployment_id, **_arm_json(arm)} for arm in arms]
        if rows:
            self.session.execute(insert(_ARMS), rows)

    def _conflict(self, model_name: str, expected: int) -> DeploymentConflict:
        current = self.session.scalar(
            select(_DEPLOYMENTS.c.revision).where(_DEPLOYMENTS.c.model_name == model_name)
        )
        now = "has no deployment" if current is None else f"is at revision {current}"
        wanted = "none (a new deployment)" if expected == 0 else f"revision {expected}"
        return DeploymentConflict(
            f"deployment of model {model_name!r} {now}, this save expected {wanted}: it was "
            "saved by someone else meanwhile; read it again and retry"
        )


@dataclass(frozen=True)
class LiveArms:
    """What scoring routes by: the deployment's arms now, its revision and its rollout
    (the rollout salts the routing hash, so each experiment draws its own customers)."""

    revision: int
    rollout: int
    arms: tuple[ArmRecord, ...]


def current_arms(engine: Engine, model_name: str) -> LiveArms | None:
    """The model's deployment's arms by role, or None when it has none: one read outside
    any transaction, for every prediction."""
    query = (
        select(
            _DEPLOYMENTS.c.revision,
            _DEPLOYMENTS.c.rollout,
            _ARMS.c.role,
            _ARMS.c.version_id,
            _ARMS.c.weight,
        )
        .select_from(_DEPLOYMENTS.outerjoin(_ARMS, _ARMS.c.deployment_id == _DEPLOYMENTS.c.id))
        .where(_DEPLOYMENTS.c.model_name == model_name)
    )
    with _read(engine) as connection:
        rows = connection.execute(query).all()
    if not rows:
        return None
    arms = [_arm(row) for row in rows if row.role is not None]  # outer join: maybe no arm
    return LiveArms(int(rows[0].revision), int(rows[0].rollout), _sorted_arms(arms))


def _values(record: DeploymentRecord, revision: int, at: datetime) -> dict[str, Any]:
    """The columns a save writes (the model name is the deployment's identity: never)."""
    return {
        "strategy": record.strategy,
        "state": record.state,
        "config": record.config,
        "stable_version_id": record.stable_version_id,
        "candidate_version_id": record.candidate_version_id,
        "previous_version_id": record.previous_version_id,
        "step": record.step,
        "step_started_at": record.step_started_at,
        "started_at": record.started_at,
        "updated_at": at,
        "memory": record.memory,
        "rollout": record.rollout,
        "revision": revision,
    }


def _sorted_arms(arms: Iterable[ArmRecord]) -> tuple[ArmRecord, ...]:
    # Sorted here, not by ORDER BY: the database's collation may order roles differently.
    ordered = tuple(sorted(arms, key=lambda arm: arm.role))
    roles = [arm.role for arm in ordered]
    if len(set(roles)) != len(roles):
        raise ValueError(f"a deployment's arm roles must be distinct, got {roles}")
    return ordered


def _arm(row: Any) -> ArmRecord:
    return ArmRecord(role=row.role, version_id=int(row.version_id), weight=float(row.weight))


def _arm_json(arm: ArmRecord) -> dict[str, Any]:
    return {"role": arm.role, "version_id": arm.version_id, "weight": arm.weight}


def _record(row: Any, arms: tuple[ArmRecord, ...]) -> DeploymentRecord:
    return DeploymentRecord(
        model_name=row.model_name,
        strategy=row.strategy,
        state=row.state,
        config=row.config,
        arms=arms,
        stable_version_id=row.stable_version_id,
        candidate_version_id=row.candidate_version_id,
        previous_version_id=row.previous_version_id,
        step=row.step,
        step_started_at=row.step_started_at,
        started_at=row.started_at,
        memory=row.memory,
        rollout=row.rollout,
        revision=row.revision,
        id=int(row.id),
        updated_at=row.updated_at,
        check_interval_s=row.check_interval_s,
    )


def _event(row: Any) -> EventRecord:
    return EventRecord(
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        reason=row.reason,
        details=row.details,
        arms=tuple(
            ArmRecord(
                role=arm["role"], version_id=int(arm["version_id"]), weight=float(arm["weight"])
            )
            for arm in row.arms
        ),
        state=row.state,
        rollout=row.rollout,
        revision=row.revision,
        id=int(row.id),
    )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)

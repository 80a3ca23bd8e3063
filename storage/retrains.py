"""Retrain policies and retrains: each trigger is stored once (by its key), at most one
retrain per model is open, and a trigger that finds one open is stored as coalesced into
it (nothing is dropped, nothing enqueued twice)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from storage.models import Retrain, RetrainPolicy

OPEN = "open"
COALESCED = "coalesced"
SKIPPED = "skipped"  # within the policy's cooldown after the last retrain ended
ENDED = ("promoted", "rollout", "rejected", "failed")


class RetrainRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ---------------------------------------------------------------- policies

    def policy(self, model_name: str) -> RetrainPolicy | None:
        return self.session.get(RetrainPolicy, model_name)

    def policies(self) -> list[RetrainPolicy]:
        return list(self.session.scalars(select(RetrainPolicy).order_by(RetrainPolicy.model_name)))

    def set_policy(
        self, model_name: str, config: dict[str, Any] | None, actor: str, at: datetime
    ) -> None:
        row = self.session.get(RetrainPolicy, model_name)
        if config is None:
            if row is not None:
                self.session.delete(row)
            return
        if row is None:
            self.session.add(
                RetrainPolicy(model_name=model_name, config=config, updated_at=at, updated_by=actor)
            )
        else:
            row.config, row.updated_at, row.updated_by = config, at, actor
        self.session.flush()

    # ---------------------------------------------------------------- triggers

    def trigger(
        self,
        *,
        model_name: str,
        trigger: str,
        trigger_key: str,
        reason: str,
        numbers: dict[str, Any],
        check_job_id: str | None,
        from_version_id: int | None,
        at: datetime,
        cooldown_s: float = 0.0,
    ) -> tuple[Retrain, bool]:
        """Record a trigger: ``open`` when the model has no open retrain (the caller then
        submits its training job, in the same transaction), else ``coalesced`` into the
        open one; ``skipped`` when the last retrain ended less than ``cooldown_s`` ago.
        (the stored row, False) for a key recorded before."""
        seen = self.by_key(trigger_key)
        if seen is not None:
            return seen, False
        self._lock_model(model_name)
        seen = self.by_key(trigger_key)  # recorded while this call waited for the lock
        if seen is not None:
            return seen, False
        open_retrain = self.open_for(model_name)
        status = COALESCED if open_retrain is not None else OPEN
        last = self.last_ended(model_name)
        if (
            open_retrain is None
            and last is not None
            and last.decided_at is not None
            and (at - last.decided_at).total_seconds() < cooldown_s
        ):
            status = SKIPPED
        row = Retrain(
            model_name=model_name,
            trigger=trigger,
            trigger_key=trigger_key,
            reason=reason,
            numbers=numbers,
            status=status,
            check_job_id=check_job_id,
            coalesced_into=open_retrain.id if open_retrain is not None else None,
            from_version_id=from_version_id,
            decision={},
            created_at=at,
        )
        self.session.add(row)
        self.session.flush()  # the open-per-model index refuses a second open row here
        return row, True

    def _lock_model(self, model_name: str) -> None:
        """Serialise triggers of one model (SQLite serialises every writer already)."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"cipml-retrain:{model_name}"},
            )

    # ---------------------------------------------------------------- reads

    def by_key(self, trigger_key: str) -> Retrain | None:
        return self.session.scalar(select(Retrain).where(Retrain.trigger_key == trigger_key))

    def get(self, retrain_id: int, *, for_update: bool = False) -> Retrain | None:
        query = select(Retrain).where(Retrain.id == retrain_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def by_job(self, job_id: str) -> Retrain | None:
        return self.session.scalar(select(Retrain).where(Retrain.job_id == job_id))

    def open_for(self, model_name: str) -> Retrain | None:
        return self.session.scalar(
            select(Retrain).where(Retrain.model_name == model_name, Retrain.status == OPEN)
        )

    def last_ended(self, model_name: str) -> Retrain | None:
        return self.session.scalar(
            select(Retrain)
            .where(Retrain.model_name == model_name, Retrain.status.in_(ENDED))
            .order_by(Retrain.decided_at.desc(), Retrain.id.desc())
            .limit(1)
        )

    def open_all(self) -> list[Retrain]:
        return list(
            self.session.scalars(
                select(Retrain).where(Retrain.status == OPEN).order_by(Retrain.created_at)
            )
        )

    def recent(self, model_name: str, limit: int = 50) -> list[Retrain]:
        """The model's retrains and coalesced triggers, newest first."""
        return list(
            self.session.scalars(
                select(Retrain)
                .where(Retrain.model_name == model_name)
                .order_by(Retrain.created_at.desc(), Retrain.id.desc())
                .limit(limit)
            )
        )

    def coalesced_counts(self, retrain_ids: list[int]) -> dict[int, int]:
        if not retrain_ids:
            return {}
        rows = self.session.execute(
            select(Retrain.coalesced_into, func.count())
            .where(Retrain.coalesced_into.in_(retrain_ids))
            .group_by(Retrain.coalesced_into)
        ).all()
        return {int(into): int(count) for into, count in rows if into is not None}

    # ---------------------------------------------------------------- writes

    def set_job(self, retrain_id: int, job_id: str) -> None:
        self.session.execute(update(Retrain).where(Retrain.id == retrain_id).values(job_id=job_id))

    def finish(
        self,
        retrain_id: int,
        status: str,
        decision: dict[str, Any],
        at: datetime,
        version_id: int | None = None,
    ) -> bool:
        """Close an open retrain (compare-and-set: False when it was closed already)."""
        if status not in ENDED:
            raise ValueError(f"a retrain ends as one of {', '.join(ENDED)}, not {status!r}")
        result = self.session.execute(
            update(Retrain)
            .where(Retrain.id == retrain_id, Retrain.status == OPEN)
            .values(status=status, decision=decision, decided_at=at, version_id=version_id)
        )
        return bool(getattr(result, "rowcount", 0))

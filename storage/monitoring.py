"""Stored monitoring checks: one per check job (a redelivered job finds its result), and
a model's history for the health-over-time charts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import insert_for
from storage.models import MonitoringCheck


class MonitoringRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, values: dict[str, Any]) -> tuple[MonitoringCheck, bool]:
        """Store a check (``values``: the columns, ``job_id`` among them); (row, True) when
        this call stored it, (the stored row, False) when the job had stored it already."""
        inserted = self.session.execute(
            insert_for(self.session, MonitoringCheck)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["job_id"])
            .returning(MonitoringCheck.id)
        ).scalar()
        row = self.by_job(str(values["job_id"]))
        assert row is not None
        return row, inserted is not None

    def by_job(self, job_id: str) -> MonitoringCheck | None:
        return self.session.scalar(select(MonitoringCheck).where(MonitoringCheck.job_id == job_id))

    def history(
        self, model_name: str, limit: int = 50, before: datetime | None = None
    ) -> list[MonitoringCheck]:
        """The model's latest ``limit`` checks (before ``before`` when given), oldest first."""
        query = select(MonitoringCheck).where(MonitoringCheck.model_name == model_name)
        if before is not None:
            query = query.where(MonitoringCheck.checked_at < before)
        rows = self.session.scalars(
            query.order_by(MonitoringCheck.checked_at.desc(), MonitoringCheck.id.desc()).limit(
                limit
            )
        ).all()
        return list(reversed(rows))

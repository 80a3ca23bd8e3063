"""Repository of jobs and their events. Takes a session; never commits or opens one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, inspect, select, update
from sqlalchemy.orm import Session

from api_client.contract import TERMINAL_STATUSES, JobStatus
from storage.db import insert_for
from storage.errors import NotFound
from storage.models import Job, JobEvent, TrainingLease, utcnow

_TERMINAL = [s.value for s in TERMINAL_STATUSES]


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ------------------------------------------------------------------ reads

    def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        return self.session.get(
            Job, job_id, with_for_update=for_update or None, populate_existing=for_update
        )

    def require(self, job_id: str, *, for_update: bool = False) -> Job:
        job = self.get(job_id, for_update=for_update)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def by_idempotency_key(self, key: str) -> Job | None:
        return self.session.scalar(select(Job).where(Job.idempotency_key == key))

    def find(
        self,
        *,
        statuses: Sequence[str] | None = None,
        job_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
        if statuses:
            query = query.where(Job.status.in_(list(statuses)))
        if job_type:
            query = query.where(Job.type == job_type)
        return list(self.session.scalars(query))

    def count(self, *, statuses: Sequence[str] | None = None) -> int:
        query = select(func.count()).select_from(Job)
        if statuses:
            query = query.where(Job.status.in_(list(statuses)))
        return int(self.session.scalar(query) or 0)

    def events(self, job_id: str, kind: str | None = None) -> list[JobEvent]:
        query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        if kind:
            query = query.where(JobEvent.kind == kind)
        return list(self.session.scalars(query))

    # ------------------------------------------------------------------ writes

    def create(self, job: Job) -> tuple[Job, bool]:
        """Insert ``job``; if its id or idempotency key exists, return that job instead.
        One statement (INSERT .. ON CONFLICT DO NOTHING RETURNING), race-free."""
        values = {
            attr.key: getattr(job, attr.key)
            for attr in inspect(Job).column_attrs
            if getattr(job, attr.key) is not None
        }
        statement = insert_for(self.session, Job).values(**values).on_conflict_do_nothing()
        created = self.session.scalars(statement.returning(Job)).first()
        if created is not None:
            return created, True
        existing = self._existing(job)
        if existing is None:
            raise NotFound(f"job {job.id} conflicts with a row that cannot be found")
        return existing, False

    def _existing(self, job: Job) -> Job | None:
        return self.get(job.id) or (
            self.by_idempotency_key(job.idempotency_key) if job.idempotency_key else None
        )

    def add_event(
        self,
        job_id: str,
        kind: str,
        *,
        attempt: int | None = None,
        worker: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            JobEvent(job_id=job_id, kind=kind, attempt=attempt, worker=worker, detail=detail)
        )

    def set_progress(self, job_id: str, progress: dict[str, Any]) -> bool:
        """Record progress of a RUNNING job; returns whether a cancel was requested."""
        now = utcnow()
        self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(progress=progress, heartbeat_at=now)
        )
        return bool(self.session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def set_params(self, job_id: str, params: dict[str, Any]) -> None:
        """Replace a job's params with their resolved form (e.g. a train job's labelled
        window resolved to a dataset), so every later step and delivery reads the same."""
        self.session.execute(update(Job).where(Job.id == job_id).values(params=params))

    def set_waiting_line(self, job_id: str, line: str) -> None:
        """The progress line of a job WAITING (for example for an admission slot)."""
        progress = {"stage": "waiting", "done": 0, "total": None, "line": line}
        self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.WAITING)
            .values(progress={**progress, "updated_at": utcnow().isoformat()})
        )

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        resources: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> bool:
        """End a job unless it has already ended; returns whether this call ended it. An
        ended job's training slot is freed in the same transaction, so nobody who sees
        the job ended can still see its slot held."""
        values: dict[str, Any] = {
            "status": status.value,
            "result": result,
            "error_code": error_code,
            "error_message": error_message,
            "finished_at": at or utcnow(),
            **(resources or {}),
        }
        outcome = self.session.execute(
            update(Job).where(Job.id == job_id, Job.status.not_in(_TERMINAL)).values(**values)
        )
        ended = bool(getattr(outcome, "rowcount", 0))
        if ended:
            self.session.execute(delete(TrainingLease).where(TrainingLease.job_id == job_id))
        return ended

    def mark_dispatched(self, job_id: str) -> None:
        self.session.execute(update(Job).where(Job.id == job_id).values(dispatched_at=utcnow()))

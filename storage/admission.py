"""Admission control for training jobs: at most N hold a slot (a lease) at once.

A training job is submitted WAITING (step "admission"). ``admit`` grants free slots to the
oldest waiting jobs, in submission order, and returns them for dispatch; the caller sends
them. Callers serialise on one lock (a PostgreSQL advisory lock; SQLite's writers are
serialised already), so two admitters never grant the same slot twice. A lease is renewed
by the job's tasks; one that expires, or whose job has ended, frees its slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from api_client.contract import TERMINAL_STATUSES, JobStatus
from storage.db import insert_for
from storage.models import Job, TrainingLease, utcnow

ADMISSION_STEP = "admission"
_LOCK_KEY = 0x63697061  # "cipa": the advisory lock of training admission
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


@dataclass(frozen=True)
class Admission:
    admitted: list[str]  # job ids granted a slot now, oldest first: the caller dispatches them
    running: int  # leases held after this call
    waiting: int  # jobs still waiting for a slot


class AdmissionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _lock(self) -> None:
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})

    def admit(self, limit: int, lease_s: float, now: datetime | None = None) -> Admission:
        """Free the slots of ended jobs and expired leases, then grant the free slots to the
        oldest waiting jobs (their status goes back to QUEUED)."""
        now = now or utcnow()
        self._lock()
        ended = select(Job.id).where(Job.status.in_(_TERMINAL))
        self.session.execute(
            delete(TrainingLease).where(
                (TrainingLease.expires_at < now) | TrainingLease.job_id.in_(ended)
            )
        )
        held = int(self.session.scalar(select(func.count()).select_from(TrainingLease)) or 0)
        free = max(0, limit - held)
        waiting = self.waiting_ids()
        granted = waiting[:free]
        for job_id in granted:
            self.session.add(
                TrainingLease(job_id=job_id, granted_at=now, expires_at=now + _ttl(lease_s))
            )
            self.session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status=JobStatus.QUEUED.value, step=None, dispatched_at=now)
            )
        self.session.flush()
        return Admission(
            admitted=granted, running=held + len(granted), waiting=len(waiting) - len(granted)
        )

    def waiting_ids(self) -> list[str]:
        """Jobs waiting for a slot, in the order they will get one (submission order)."""
        return list(
            self.session.scalars(
                select(Job.id)
                .where(Job.status == JobStatus.WAITING.value, Job.step == ADMISSION_STEP)
                .order_by(Job.created_at, Job.id)
            )
        )

    def position(self, job: Job) -> int | None:
        """1 for the next job to be admitted; None for a job not waiting for a slot."""
        if job.status != JobStatus.WAITING.value or job.step != ADMISSION_STEP:
            return None
        ahead = self.session.scalar(
            select(func.count())
            .select_from(Job)
            .where(
                Job.status == JobStatus.WAITING.value,
                Job.step == ADMISSION_STEP,
                (Job.created_at < job.created_at)
                | ((Job.created_at == job.created_at) & (Job.id < job.id)),
            )
        )
        return int(ahead or 0) + 1

    def has_lease(self, job_id: str) -> bool:
        """Whether the job has a lease row (live, or expired but not yet freed)."""
        return self.session.get(TrainingLease, job_id) is not None

    def holds(self, job_id: str, now: datetime | None = None) -> bool:
        """Whether the job holds a live lease."""
        lease = self.session.get(TrainingLease, job_id)
        return lease is not None and lease.expires_at >= (now or utcnow())

    def renew(self, job_id: str, lease_s: float, now: datetime | None = None) -> bool:
        """Extend the job's lease; False when it has none (it expired and was freed): a
        running job then takes a slot back, since stopping its work would lose it."""
        now = now or utcnow()
        renewed = self.session.execute(
            update(TrainingLease)
            .where(TrainingLease.job_id == job_id)
            .values(expires_at=now + _ttl(lease_s))
        )
        if getattr(renewed, "rowcount", 0):
            return True
        self.session.execute(
            insert_for(self.session, TrainingLease)
            .values(job_id=job_id, granted_at=now, expires_at=now + _ttl(lease_s))
            .on_conflict_do_nothing(index_elements=["job_id"])
        )
        return False

    def release(self, job_id: str) -> None:
        self.session.execute(delete(TrainingLease).where(TrainingLease.job_id == job_id))

    def held(self) -> list[str]:
        return list(self.session.scalars(select(TrainingLease.job_id)))


def _ttl(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)

"""What a running job sees: its params, its attempt, progress reporting and cancel checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from sqlalchemy.orm import Session

from api_client.client import PROGRESS_STATE
from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import utcnow
from workers.jobs.errors import JobCancelledSignal
from workers.runtime import Runtime

log = logging.getLogger("cipml.job")


class JobContext:
    def __init__(
        self, runtime: Runtime, task: Task, job_id: str, job_type: str, attempt: int
    ) -> None:
        self.runtime = runtime
        self.task = task
        self.job_id = job_id
        self.job_type = job_type
        self.attempt = attempt
        self._last_write = 0.0
        self._last_stage = ""

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.runtime.sessions) as session:
            yield session

    def progress(
        self,
        stage: str,
        done: float,
        total: float | None = None,
        line: str = "",
        *,
        force: bool = False,
    ) -> None:
        """Report progress; at most every CIPML_PROGRESS_INTERVAL_S unless the stage changes
        or the work is done. Raises JobCancelledSignal when a cancel was requested."""
        now = time.monotonic()
        finished = total is not None and done >= total
        if not (
            force
            or finished
            or stage != self._last_stage
            or now - self._last_write >= self.settings.progress_interval_s
        ):
            return
        self._last_write, self._last_stage = now, stage
        line = line or (f"{stage}: {done:g}/{total:g}" if total else f"{stage}: {done:g}")
        payload = {
            "stage": stage,
            "done": done,
            "total": total,
            "line": line,
            "updated_at": utcnow().isoformat(),
        }
        if publish_progress(self.task, self.runtime, self.job_id, payload):
            raise JobCancelledSignal()

    def check_cancelled(self) -> None:
        with self.session() as session:
            job = JobRepository(session).require(self.job_id)
            cancel = job.cancel_requested
        if cancel:
            raise JobCancelledSignal()

    def send_after_commit(
        self, name: str, payload: dict[str, Any], *, queue: str, task_id: str | None = None
    ) -> None:
        """Send a task by name (call only after the rows it reads are committed)."""
        soft, hard = self.settings.limits_for(queue)
        self.task.app.send_task(
            name,
            args=[payload],
            queue=queue,
            task_id=task_id,
            soft_time_limit=soft,
            time_limit=hard,
        )


def publish_progress(task: Task, runtime: Runtime, job_id: str, payload: dict[str, Any]) -> bool:
    """Put a job's progress in its row, the result backend (the client's bar) and Flower.
    Returns whether a cancel was requested."""
    with transaction(runtime.sessions) as session:
        cancel = JobRepository(session).set_progress(job_id, payload)
    # Flower shows only fixed task fields, but a custom event's `result` field is shown
    # on a running task: the human line goes there (flower#143, #453).
    task.send_event("task-progress", result=payload["line"])
    task.backend.store_result(job_id, {"job_id": job_id, "progress": payload}, PROGRESS_STATE)
    log.info("progress %s", payload["line"])
    return cancel

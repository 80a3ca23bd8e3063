"""The one way work split over many tasks finishes: count completions in storage, then
start the follow-up exactly once (see storage.fanin for why a part delivered twice, or two
parts finishing together, cannot start it twice). No Celery chords: with the Redis result
backend they can hang (celery#6437, #5060)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task

from api_client.contract import ErrorCode, JobStatus
from api_client.schemas import ErrorInfo
from storage.db import is_transient, transaction
from storage.fanin import FanInRepository, FollowUp
from storage.jobs import JobRepository
from storage.models import utcnow
from workers.jobs.lifecycle import finish
from workers.runtime import Runtime, runtime_for

log = logging.getLogger("cipml.job")
# A part's work returns its result, or None when it handed the rest of the part to a
# continuation task (which completes the part later).
PartWork = Callable[[Task, Runtime, dict[str, Any]], dict[str, Any] | None]


def follow_up_task_id(group_id: str) -> str:
    return f"fanin-{group_id}"


def complete_part(
    runtime: Runtime, app: Celery, group_id: str, part_id: str, result: dict[str, Any] | None = None
) -> bool:
    """Record a finished part; sends the follow-up if this part completed the group.
    Returns whether it sent it."""
    with transaction(runtime.sessions) as session:
        follow_up = FanInRepository(session).complete(group_id, part_id, result)
    if follow_up is None:
        return False
    send_follow_up(runtime, app, follow_up)
    return True


def send_follow_up(runtime: Runtime, app: Celery, follow_up: FollowUp) -> None:
    soft, hard = runtime.settings.limits_for(follow_up.queue)
    app.send_task(
        follow_up.task,
        args=[follow_up.payload],
        queue=follow_up.queue,
        task_id=follow_up_task_id(follow_up.group_id),
        soft_time_limit=soft,
        time_limit=hard,
    )
    with transaction(runtime.sessions) as session:
        FanInRepository(session).mark_dispatched(follow_up.group_id)


def run_part(task: Task, payload: dict[str, Any], work: PartWork, what: str = "parts") -> bool:
    """The body of every part task: do the part's work, record it, report the group's
    progress on the job row. A part that fails (not transiently: those are retried by
    redelivery) ends its job FAILED, since the group could never complete."""
    runtime = runtime_for(task.app)
    job_id, part = payload["job_id"], str(payload["part"])
    try:
        result = work(task, runtime, payload)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.exception("part %s of job %s failed", part, job_id)
        error = ErrorInfo(
            code=ErrorCode.INTERNAL_ERROR,
            message=f"part {part} failed: {type(exc).__name__}: {exc}",
        )
        finish(task, runtime, job_id, JobStatus.FAILED, error=error)
        return False
    if result is None:
        return False
    sent = complete_part(runtime, task.app, payload["group_id"], part, result)
    _report_progress(runtime, job_id, payload["group_id"], what)
    return sent


def _report_progress(runtime: Runtime, job_id: str, group_id: str, what: str) -> None:
    with transaction(runtime.sessions) as session:
        group = FanInRepository(session).get(group_id)
        if group is None:
            return
        JobRepository(session).set_progress(
            job_id,
            {
                "stage": "parts",
                "done": group.completed,
                "total": group.expected,
                "line": f"{group.completed}/{group.expected} {what} done",
                "updated_at": utcnow().isoformat(),
            },
        )

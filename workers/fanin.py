"""The one way work split over many tasks finishes: count completions in storage, then
start the follow-up exactly once (see storage.fanin for why a part delivered twice, or two
parts finishing together, cannot start it twice). No Celery chords: with the Redis result
backend they can hang (celery#6437, #5060)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from storage.db import transaction
from storage.fanin import FanInRepository, FollowUp
from workers.runtime import Runtime


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

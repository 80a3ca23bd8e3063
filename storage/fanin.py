"""Fan-in: count completed parts in storage and name the one follow-up to start.

Completions of one group are serialised by a row lock on the group, so two parts that
finish at the same instant cannot both miss (or both see) the last completion; a part
delivered twice is counted once (its row is the key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.db import insert_for
from storage.errors import NotFound
from storage.models import FanInGroup, FanInPart, utcnow


@dataclass(frozen=True)
class FollowUp:
    group_id: str
    task: str
    queue: str
    payload: dict[str, Any]


class FanInRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def open(
        self,
        group_id: str,
        *,
        expected: int,
        follow_up_task: str,
        follow_up_queue: str,
        follow_up_payload: dict[str, Any],
        job_id: str | None = None,
    ) -> FanInGroup:
        """Create the group (idempotent: opening it again changes nothing)."""
        if expected < 1:
            raise ValueError("a fan-in group needs at least one part")
        self.session.execute(
            insert_for(self.session, FanInGroup)
            .values(
                id=group_id,
                job_id=job_id,
                expected=expected,
                follow_up_task=follow_up_task,
                follow_up_queue=follow_up_queue,
                follow_up_payload=follow_up_payload,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        group = self.session.get(FanInGroup, group_id)
        assert group is not None
        return group

    def get(self, group_id: str) -> FanInGroup | None:
        return self.session.get(FanInGroup, group_id)

    def complete(
        self, group_id: str, part_id: str, result: dict[str, Any] | None = None
    ) -> FollowUp | None:
        """Record that ``part_id`` finished. Returns the follow-up this caller must send:
        when this part completed the group, or when this same part completed it on an
        earlier delivery that died before the follow-up was marked sent."""
        group = self.session.get(FanInGroup, group_id, with_for_update=True, populate_existing=True)
        if group is None:
            raise NotFound(f"no fan-in group {group_id}")
        inserted = self.session.execute(
            insert_for(self.session, FanInPart)
            .values(
                group_id=group_id,
                part_id=part_id,
                result=result,
            )
            .on_conflict_do_nothing(index_elements=["group_id", "part_id"])
            .returning(FanInPart.part_id)
        ).first()
        if inserted is not None:
            group.completed += 1
            if group.completed >= group.expected and group.ready_at is None:
                group.ready_at = utcnow()
                group.ready_part_id = part_id
        self.session.flush()
        if group.dispatched_at is None and group.ready_part_id == part_id:
            return FollowUp(
                group_id=group.id,
                task=group.follow_up_task,
                queue=group.follow_up_queue,
                payload=dict(group.follow_up_payload),
            )
        return None

    def parts(self, group_id: str) -> list[FanInPart]:
        """The completed parts of a group, ordered by part id."""
        return list(
            self.session.scalars(
                select(FanInPart).where(FanInPart.group_id == group_id).order_by(FanInPart.part_id)
            )
        )

    def mark_dispatched(self, group_id: str) -> None:
        self.session.execute(
            update(FanInGroup).where(FanInGroup.id == group_id).values(dispatched_at=utcnow())
        )

"""Alerts: the cooldown state per (model, kind), the notifications, and their webhook
deliveries.

A check applies its findings with the states locked (``lock_states``): two checks of one
model finishing together apply theirs one after the other, so a problem is raised once.
Notifications are unique per (check job, kind): a redelivered check stores none twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.db import insert_for
from storage.models import Alert, AlertState, WebhookDelivery, utcnow

LEVELS = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
_DELIVERY_NAMESPACE = uuid.UUID("6b1f3c2e-4a57-4c1e-9b57-7d3f0d9c2a11")


def delivery_id(alert_id: int, url: str) -> str:
    """The same alert sent to the same URL always has the same id: receivers deduplicate
    by it, and a re-sent delivery task finds its row."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{alert_id}:{url}"))


class AlertRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ---------------------------------------------------------------- cooldown states

    def lock_states(self, model_name: str, kinds: Sequence[str]) -> dict[str, AlertState]:
        """The model's states of ``kinds`` (rows made when missing), locked until commit."""
        for kind in kinds:
            self.session.execute(
                insert_for(self.session, AlertState)
                .values(
                    model_name=model_name, kind=kind, active=False, state={}, updated_at=utcnow()
                )
                .on_conflict_do_nothing(index_elements=["model_name", "kind"])
            )
        rows = self.session.scalars(
            select(AlertState)
            .where(AlertState.model_name == model_name, AlertState.kind.in_(list(kinds)))
            .order_by(AlertState.kind)  # one lock order for every caller: no deadlock
            .with_for_update()
        ).all()
        return {row.kind: row for row in rows}

    def active_states(self, model_name: str | None = None) -> list[AlertState]:
        query = select(AlertState).where(AlertState.active.is_(True))
        if model_name is not None:
            query = query.where(AlertState.model_name == model_name)
        return list(self.session.scalars(query.order_by(AlertState.model_name, AlertState.kind)))

    # ---------------------------------------------------------------- notifications

    def record(self, values: dict[str, Any]) -> tuple[Alert, bool]:
        """Store a notification; (the stored one, False) when its check stored it already."""
        inserted = self.session.execute(
            insert_for(self.session, Alert)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["check_job_id", "kind"])
            .returning(Alert.id)
        ).scalar()
        if inserted is not None:
            row = self.session.get(Alert, inserted)
            assert row is not None
            return row, True
        row = self.session.scalar(
            select(Alert).where(
                Alert.check_job_id == values["check_job_id"], Alert.kind == values["kind"]
            )
        )
        assert row is not None
        return row, False

    def of_check(self, check_job_id: str) -> list[Alert]:
        return list(
            self.session.scalars(
                select(Alert).where(Alert.check_job_id == check_job_id).order_by(Alert.id)
            )
        )

    def recent(
        self,
        model_name: str | None = None,
        *,
        since: datetime | None = None,
        min_level: str = "LOW",
        limit: int = 100,
    ) -> list[Alert]:
        """Notifications, newest first."""
        query = select(Alert).where(Alert.level.in_(LEVELS[LEVELS.index(min_level) :]))
        if model_name is not None:
            query = query.where(Alert.model_name == model_name)
        if since is not None:
            query = query.where(Alert.at >= since)
        return list(
            self.session.scalars(query.order_by(Alert.at.desc(), Alert.id.desc()).limit(limit))
        )

    # ---------------------------------------------------------------- webhook deliveries

    def add_delivery(self, alert_id: int, url: str, at: datetime) -> WebhookDelivery:
        """The pending delivery of an alert to a URL (the existing one when it was made)."""
        key = delivery_id(alert_id, url)
        self.session.execute(
            insert_for(self.session, WebhookDelivery)
            .values(
                id=key,
                alert_id=alert_id,
                url=url,
                status="pending",
                attempts=0,
                next_attempt_at=at,
                created_at=at,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = self.session.get(WebhookDelivery, key)
        assert row is not None
        return row

    def delivery(self, key: str, *, for_update: bool = False) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(WebhookDelivery.id == key)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def deliveries_of(self, alert_ids: Sequence[int]) -> list[WebhookDelivery]:
        if not alert_ids:
            return []
        return list(
            self.session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.alert_id.in_(list(alert_ids)))
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            )
        )

    def record_attempt(
        self,
        key: str,
        *,
        status: str,
        status_code: int | None,
        error: str | None,
        next_attempt_at: datetime | None,
        at: datetime,
    ) -> None:
        self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == key)
            .values(
                status=status,
                attempts=WebhookDelivery.attempts + 1,
                last_status_code=status_code,
                last_error=error,
                next_attempt_at=next_attempt_at,
                delivered_at=at if status == "delivered" else None,
            )
            .execution_options(synchronize_session=False)
        )

    def overdue_deliveries(self, before: datetime, limit: int = 100) -> list[WebhookDelivery]:
        """Pending deliveries whose next attempt is long past: their task was lost."""
        return list(
            self.session.scalars(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < before
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
        )

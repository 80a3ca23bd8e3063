"""client.alerts(): notifications newest first with their webhook deliveries, and the
problems firing now."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api_client.retrain_params import AlertsRequest
from storage.alerts import AlertRepository
from workers.monitoring.alerting import alert_view


def list_alerts(session: Session, request: AlertsRequest) -> dict[str, Any]:
    repository = AlertRepository(session)
    active = [
        {
            "model_name": row.model_name,
            "kind": row.kind,
            "level": row.state.get("level"),
            "since": row.state.get("opened_at"),
            "last_notified_at": row.state.get("last_notified_at"),
            "message": row.state.get("message"),
        }
        for row in repository.active_states(request.model_name)
    ]
    if request.active_only:
        return {"active": active, "alerts": []}
    rows = repository.recent(
        request.model_name, since=request.since, min_level=request.min_level, limit=request.limit
    )
    deliveries: dict[int, list[dict[str, Any]]] = {}
    for delivery in repository.deliveries_of([row.id for row in rows]):
        deliveries.setdefault(delivery.alert_id, []).append(
            {
                "delivery_id": delivery.id,
                "url": delivery.url,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "last_status_code": delivery.last_status_code,
                "last_error": delivery.last_error,
                "delivered_at": delivery.delivered_at.isoformat()
                if delivery.delivered_at
                else None,
            }
        )
    return {
        "active": active,
        "alerts": [{**alert_view(row), "deliveries": deliveries.get(row.id, [])} for row in rows],
    }

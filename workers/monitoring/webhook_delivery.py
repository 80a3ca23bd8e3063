"""One webhook delivery attempt and its bookkeeping: read the pending delivery, POST it,
record the outcome, and say when to try again. A failing or slow receiver costs only this
task (a check never waits on it); the delivery id lets receivers drop a repeat."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from storage.alerts import AlertRepository
from storage.db import transaction
from storage.models import Alert, utcnow
from workers.monitoring.alerting import alert_view
from workers.monitoring.webhooks import backoff_s, post_json
from workers.runtime import Runtime

log = logging.getLogger("cipml.alerts")


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # delivered | pending | failed | skipped
    attempt: int
    retry_in_s: float | None
    detail: str


def attempt_delivery(runtime: Runtime, delivery_id: str) -> DeliveryOutcome:
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        repository = AlertRepository(session)
        delivery = repository.delivery(delivery_id)
        if delivery is None or delivery.status != "pending":
            status = "unknown" if delivery is None else delivery.status
            return DeliveryOutcome("skipped", 0, None, f"delivery {delivery_id} is {status}")
        alert = session.get(Alert, delivery.alert_id)
        assert alert is not None
        url, attempt = delivery.url, delivery.attempts + 1
        body: dict[str, Any] = {"service": "cip-ml", "alert": alert_view(alert)}
    result = post_json(
        url,
        body,
        delivery_id=delivery_id,
        timeout_s=settings.webhook_timeout_s,
        secret=settings.webhook_secret,
    )
    now = utcnow()
    retry_in: float | None = None
    if result.delivered:
        status = "delivered"
    elif result.retryable and attempt < settings.webhook_max_attempts:
        status, retry_in = "pending", backoff_s(attempt)
    else:
        status = "failed"
    with transaction(runtime.sessions) as session:
        AlertRepository(session).record_attempt(
            delivery_id,
            status=status,
            status_code=result.status_code,
            error=result.error,
            next_attempt_at=now + timedelta(seconds=retry_in) if retry_in is not None else None,
            at=now,
        )
    detail = result.error or f"HTTP {result.status_code}"
    if status != "delivered":
        log.warning(
            "webhook delivery %s to %s, attempt %d: %s (%s)",
            delivery_id,
            url,
            attempt,
            detail,
            status if retry_in is None else f"retry in {retry_in:g} s",
        )
    return DeliveryOutcome(status, attempt, retry_in, detail)

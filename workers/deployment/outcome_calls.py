"""Recording true outcomes: by prediction id (checked against the log) or by customer."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from api_client.registry_params import RecordOutcomesRequest
from storage.db import transaction
from storage.models import utcnow
from storage.outcomes import OutcomeIn, OutcomeRepository
from workers.deployment.resolve import require_model
from workers.deployment.services import ScoringServices


def record_outcomes(services: ScoringServices, request: RecordOutcomesRequest) -> dict[str, Any]:
    services.log_buffer.flush()  # this process's own recent predictions become checkable
    now = utcnow()
    # Another process may still buffer a prediction made in its last flush interval: ids
    # that recent are stored without the check rather than refused as unknown.
    unverified_after = now - timedelta(seconds=2 * services.settings.prediction_log_flush_s + 5)
    items = [
        OutcomeIn(
            prediction_id=item.prediction_id,
            routing_key=item.routing_key,
            value=item.value,
            label=item.label,
            observed_at=item.observed_at,
        )
        for item in request.outcomes
    ]
    with transaction(services.sessions) as session:
        require_model(session, request.model_name)
        summary = OutcomeRepository(session, services.log_store).record(
            request.model_name, items, now=now, unverified_after=unverified_after
        )
    return {"model_name": request.model_name, **asdict(summary)}

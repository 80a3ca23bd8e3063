"""Inline scoring: a small batch of rows validated against the serving version's inputs,
routed by customer, scored, logged, and answered row by row."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from api_client.contract import ErrorCode
from api_client.registry_params import PredictRequest
from storage.db import transaction
from storage.models import utcnow
from workers.deployment.errors import ScoringError
from workers.deployment.log_records import log_records
from workers.deployment.model_inputs import nullable_of, to_model_frame
from workers.deployment.outputs import score_rows
from workers.deployment.resolve import version_for_alias
from workers.deployment.routing import Arm, route_all
from workers.deployment.rows import validate_rows
from workers.deployment.services import ScoringServices
from workers.deployment.serving import ServingVersion, load_pipeline_for, pipeline_cache


def predict(services: ScoringServices, request: PredictRequest) -> dict[str, Any]:
    started = time.perf_counter()
    settings = services.settings
    if len(request.rows) > settings.max_inline_rows:
        raise ScoringError(
            ErrorCode.BATCH_TOO_LARGE,
            f"{len(request.rows):,} rows is more than the {settings.max_inline_rows:,} a "
            "predict call takes inline (CIPML_MAX_INLINE_ROWS); register the rows as a "
            "dataset and score it by reference with client.score_dataset(model, dataset_id)",
        )
    with transaction(services.sessions) as session:
        version = ServingVersion.of(version_for_alias(session, request.model_name, request.alias))
    pipeline = load_pipeline_for(
        version,
        services.store,
        pipeline_cache(settings.pipeline_cache_size),
        settings.artifact_hmac_key,
    )
    checked = validate_rows(
        request.rows,
        version.input_schema,
        key_column=request.key_column,
        nullable=nullable_of(version.input_schema),
    )
    # One arm until rollouts add more: the routing layer is already the one they use.
    arms = [Arm(request.alias, version.id, 1.0)]
    routed = route_all(checked.keys, arms, salt=version.model_name)
    frame = to_model_frame(checked.frame, version.input_schema)
    outputs = score_rows(pipeline, frame, version)
    at = utcnow()
    latency_ms = (time.perf_counter() - started) * 1000
    records = log_records(
        version,
        [arm.name for arm in routed],
        checked.keys,
        outputs,
        checked.frame,
        latency_ms=latency_ms,
        at=at,
    )
    services.log_buffer.add(version.model_name, records)
    predictions = [
        {
            "row": position,
            "prediction_id": records["prediction_id"].iat[i],
            "routing_key": checked.keys[i],
            "version": version.version,
            "arm": routed[i].name,
            "score": None if outputs.score[i] != outputs.score[i] else float(outputs.score[i]),
            "label": outputs.label[i],
        }
        for i, position in enumerate(checked.positions)
    ]
    return {
        "model_name": version.model_name,
        "alias": request.alias,
        "version": version.version,
        "predictions": predictions,
        "errors": [asdict(error) for error in checked.errors],
        "ignored_columns": checked.ignored_columns,
        "scored": len(predictions),
        "rejected": len({error.row for error in checked.errors}),
        "latency_ms": round(latency_ms, 3),
    }

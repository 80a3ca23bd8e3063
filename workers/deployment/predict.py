"""Inline scoring: a small batch of rows validated against the serving version's inputs,
routed by customer, scored, logged, and answered row by row."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any

import sklearn

from api_client.contract import ErrorCode
from api_client.registry_params import PredictRequest
from storage.models import utcnow
from storage.prediction_log import new_prediction_ids
from workers.deployment.alias_cache import serving_version
from workers.deployment.errors import ScoringError
from workers.deployment.log_records import log_records
from workers.deployment.model_inputs import nullable_of, to_model_frame
from workers.deployment.outputs import score_rows
from workers.deployment.routing import Arm, route_all
from workers.deployment.rows import InputColumns, input_columns, validate_rows
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
    # The alias is read on every call; the version's registry facts come from this
    # process's cache when it served that version before.
    version = serving_version(services.sessions, request.model_name, request.alias)
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
        prepared=_inputs_of(version),
    )
    # One arm until rollouts add more: the routing layer is already the one they use.
    arms = [Arm(request.alias, version.id, 1.0)]
    routed = route_all(checked.keys, arms, salt=version.model_name)
    frame = to_model_frame(checked.frame, version.input_schema)
    # The rows were checked (no infinities; NaN only where training saw nulls, and the
    # imputers still handle it): sklearn's finiteness scans are skipped, ~3 ms of 1 row.
    with sklearn.config_context(assume_finite=True):
        outputs = score_rows(pipeline, frame, version)
    at = utcnow()
    ids = new_prediction_ids(len(checked.keys), at)
    latency_ms = (time.perf_counter() - started) * 1000
    arm_names = [arm.name for arm in routed]
    records = log_records(
        version,
        arm_names,
        checked.keys,
        outputs,
        checked.frame,
        latency_ms=latency_ms,
        at=at,
        prediction_ids=ids,
    )
    services.log_buffer.add(version.model_name, records)  # written by the flush thread
    score = outputs.score.tolist()
    predictions = [
        {
            "row": position,
            "prediction_id": ids[i],
            "routing_key": checked.keys[i],
            "version": version.version,
            "arm": arm_names[i],
            "score": None if score[i] != score[i] else score[i],
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


_inputs: dict[int, InputColumns] = {}
_inputs_lock = threading.Lock()
_INPUTS_KEPT = 64


def _inputs_of(version: ServingVersion) -> InputColumns:
    """The version's input schema, read once per version id (a registered version never
    changes its inputs)."""
    with _inputs_lock:
        prepared = _inputs.get(version.id)
    if prepared is None:
        prepared = input_columns(version.input_schema, nullable_of(version.input_schema))
        with _inputs_lock:
            if len(_inputs) >= _INPUTS_KEPT:
                _inputs.pop(next(iter(_inputs)))
            _inputs[version.id] = prepared
    return prepared

"""Inline scoring: a small batch of rows validated against the serving version's inputs,
routed by customer, scored, logged, and answered row by row."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from api_client.contract import ErrorCode
from api_client.registry_params import PredictRequest
from storage.models import utcnow
from storage.prediction_log import new_prediction_ids
from workers.deployment.errors import ScoringError
from workers.deployment.log_records import log_records
from workers.deployment.model_inputs import nullable_of, to_model_frame
from workers.deployment.outputs import Outputs, score_rows
from workers.deployment.routing import route_all
from workers.deployment.rows import InputColumns, ValidatedRows, input_columns, validate_rows
from workers.deployment.services import ScoringServices
from workers.deployment.serving import ServingVersion, pipeline_for
from workers.deployment.serving_plan import serving_plan

log = logging.getLogger("cipml.scoring")


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
    # The alias (or the deployment's arms) is read on every call; the versions' registry
    # facts come from this process's cache when it served them before.
    plan = serving_plan(services.sessions, request.model_name, request.alias)
    stable = plan.stable
    stable_pipeline = _pipeline(services, stable)
    checked = validate_rows(
        request.rows,
        stable.input_schema,
        key_column=request.key_column,
        prepared=_inputs_of(stable),
    )
    routed = route_all(checked.keys, plan.arms, salt=plan.salt)
    at = utcnow()
    call = _Call(
        services,
        request,
        checked,
        ids=new_prediction_ids(len(checked.keys), at),
        at=at,
        prepared_ms=(time.perf_counter() - started) * 1000,
    )
    groups: dict[str, list[int]] = {}
    for i, arm in enumerate(routed):
        groups.setdefault(arm.name, []).append(i)
    for arm in plan.arms:
        rows = groups.get(arm.name, [])
        version = plan.versions[arm.version_id]
        if rows and version.id != stable.id:
            # Rows this arm cannot score are served by the stable arm (and logged as the
            # arm's errors, which the canary guardrails count).
            rows = call.score_candidate(arm.name, version, rows, call.ids, call.served)
            call.score(stable, stable_pipeline, rows, plan.stable_arm)
        elif rows:
            call.score(stable, stable_pipeline, rows, arm.name)
    for role, version in plan.shadows:  # scores every row; its outputs are only logged
        everyone = list(range(len(checked.keys)))
        shadow_ids = new_prediction_ids(len(everyone), at)
        call.score_candidate(role, version, everyone, shadow_ids, _ServedRows(len(everyone)))
    if call.logged:
        frame = call.logged[0] if len(call.logged) == 1 else pd.concat(call.logged)
        services.log_buffer.add(stable.model_name, frame)  # written by the flush thread
    served = call.served
    predictions = [
        {
            "row": position,
            "prediction_id": call.ids[i],
            "routing_key": checked.keys[i],
            "version": served.version[i],
            "arm": served.arm[i],
            "score": served.score[i],
            "label": served.label[i],
        }
        for i, position in enumerate(checked.positions)
    ]
    return {
        "model_name": stable.model_name,
        "alias": request.alias,
        "version": stable.version,
        "predictions": predictions,
        "errors": [asdict(error) for error in checked.errors],
        "ignored_columns": checked.ignored_columns,
        "scored": len(predictions),
        "rejected": len({error.row for error in checked.errors}),
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }


class _ServedRows:
    """What each validated row's reply says, filled arm by arm."""

    def __init__(self, n: int) -> None:
        self.version: list[str | None] = [None] * n
        self.arm: list[str | None] = [None] * n
        self.score: list[float | None] = [None] * n
        self.label: list[str | None] = [None] * n

    def fill(
        self, rows: Sequence[int], version: ServingVersion, arm: str, outputs: Outputs
    ) -> None:
        scores, labels = outputs.score.tolist(), outputs.label
        for j, i in enumerate(rows):
            self.version[i], self.arm[i] = version.version, arm
            self.score[i] = None if scores[j] != scores[j] else scores[j]  # NaN: no score
            self.label[i] = labels[j]


class _Call:
    """One predict call's rows, ids and log rows, scored arm by arm. ``rows`` are indices
    into the validated rows; a row's latency is the shared preparation plus its arm's
    scoring time, so the canary guardrails compare the arms' own costs."""

    def __init__(
        self,
        services: ScoringServices,
        request: PredictRequest,
        checked: ValidatedRows,
        *,
        ids: list[str],
        at: datetime,
        prepared_ms: float,
    ) -> None:
        self.services, self.request, self.checked = services, request, checked
        self.ids, self.at, self.prepared_ms = ids, at, prepared_ms
        self.served = _ServedRows(len(checked.keys))
        self.logged: list[pd.DataFrame] = []

    def score(self, version: ServingVersion, pipeline: Any, rows: list[int], arm: str) -> None:
        if not rows:
            return
        begun = time.perf_counter()
        frame = self.checked.frame
        if len(rows) != len(frame):
            frame = frame.iloc[rows]
        outputs = _score_frame(pipeline, frame, version)
        self._log(version, arm, rows, outputs, frame, self.ids, begun)
        self.served.fill(rows, version, arm, outputs)

    def score_candidate(
        self,
        arm: str,
        version: ServingVersion,
        rows: list[int],
        ids: list[str],
        served: _ServedRows,
    ) -> list[int]:
        """Score ``rows`` with a version other than the stable one (its inputs may differ:
        the rows are checked against its own schema); returns the rows it could not
        score."""
        own = validate_rows(
            self.request.rows,
            version.input_schema,
            key_column=self.request.key_column,
            prepared=_inputs_of(version),
        )
        index_of = {position: j for j, position in enumerate(own.positions)}
        positions = self.checked.positions
        usable = [i for i in rows if positions[i] in index_of]
        failed = [i for i in rows if positions[i] not in index_of]
        code = ErrorCode.COLUMN_MISSING.value  # its schema refused the row
        if usable:
            frame = own.frame.iloc[[index_of[positions[i]] for i in usable]]
            try:
                pipeline = _pipeline(self.services, version)
                # The arm's latency: the shared preparation and its own scoring, like the
                # stable arm's (its second validation and first load are ours, not its).
                begun = time.perf_counter()
                outputs = _score_frame(pipeline, frame, version)
            except Exception as exc:  # any failure: the stable arm serves these rows
                log.warning(
                    "arm %s (%s %s) failed to score %d rows: %s",
                    arm,
                    version.model_name,
                    version.version,
                    len(usable),
                    exc,
                )
                code = exc.code if isinstance(exc, ScoringError) else "scoring_failed"
                failed, usable = sorted(failed + usable), []
            else:
                self._log(version, arm, usable, outputs, frame, ids, begun)
                served.fill(usable, version, arm, outputs)
        if failed:
            self.logged.append(self._error_rows(version, arm, failed, code))
        return failed

    def _log(
        self,
        version: ServingVersion,
        arm: str,
        rows: list[int],
        outputs: Outputs,
        frame: pd.DataFrame,
        ids: list[str],
        begun: float,
    ) -> None:
        latency = self.prepared_ms + (time.perf_counter() - begun) * 1000
        keys = self.checked.keys
        self.logged.append(
            log_records(
                version,
                [arm],
                keys if len(rows) == len(keys) else [keys[i] for i in rows],
                outputs,
                frame,
                latency_ms=latency,
                at=self.at,
                prediction_ids=ids if len(rows) == len(ids) else [ids[i] for i in rows],
            )
        )

    def _error_rows(
        self, version: ServingVersion, arm: str, rows: list[int], code: str
    ) -> pd.DataFrame:
        n = len(rows)
        frame = log_records(
            version,
            [arm],
            [self.checked.keys[i] for i in rows],
            Outputs(np.full(n, np.nan), None),
            pd.DataFrame(index=range(n)),
            latency_ms=0.0,
            at=self.at,
        )
        frame["error"] = code
        return frame


def _pipeline(services: ScoringServices, version: ServingVersion) -> Any:
    return pipeline_for(version, services.store, services.settings)


def _score_frame(pipeline: Any, frame: pd.DataFrame, version: ServingVersion) -> Outputs:
    model_frame = to_model_frame(frame, version.input_schema)
    # The rows were checked (no infinities; NaN only where training saw nulls, and the
    # imputers still handle it): sklearn's finiteness scans are skipped, ~3 ms of 1 row.
    with sklearn.config_context(assume_finite=True):
        return score_rows(pipeline, model_frame, version)


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

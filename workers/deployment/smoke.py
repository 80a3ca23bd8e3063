"""Blue-green's check of the idle slot: the candidate's artifact verifies and a batch of the
reference data (the rows it was trained on) scores without error within the latency
budget, before any traffic switches to it."""

from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq

from storage.db import transaction
from storage.model_versions import ModelVersionRepository
from workers.deployment.errors import ScoringError
from workers.deployment.model_inputs import to_model_frame
from workers.deployment.outputs import score_rows
from workers.deployment.rollout_types import SmokeResult
from workers.deployment.services import ScoringServices
from workers.deployment.serving import ServingVersion, pipeline_for


def smoke_test(
    services: ScoringServices, version_id: int, rows: int, budget_ms: float
) -> SmokeResult:
    with transaction(services.sessions) as session:
        row = ModelVersionRepository(session).require(version_id)
        version = ServingVersion.of(row)
        dataset_sha256 = row.dataset_sha256
    try:
        pipeline = pipeline_for(version, services.store, services.settings)
    except ScoringError as exc:
        return SmokeResult(False, 0, 0, 0.0, f"the artifact did not verify: {exc.message}")
    try:
        with services.store.open_verified(dataset_sha256) as handle:
            names = [field["name"] for field in version.input_schema]
            table = pq.ParquetFile(handle).read(columns=names)
    except Exception as exc:  # a purged or damaged training dataset: no reference batch
        return SmokeResult(False, 0, 0, 0.0, f"the reference data could not be read: {exc}")
    frame = table.slice(0, rows).to_pandas()
    started = time.perf_counter()
    try:
        outputs = score_rows(pipeline, to_model_frame(frame, version.input_schema), version)
    except Exception as exc:  # the candidate cannot score its own training rows
        latency = (time.perf_counter() - started) * 1000
        return SmokeResult(False, len(frame), len(frame), latency, f"scoring failed: {exc}")
    latency = (time.perf_counter() - started) * 1000
    errors = 0 if version.problem == "clustering" else int(np.isnan(outputs.score).sum())
    if errors:
        message = f"{errors} of {len(frame)} reference rows scored NaN"
    elif latency > budget_ms:
        message = f"the batch took {latency:.0f} ms, over the {budget_ms:.0f} ms budget"
    else:
        message = f"{len(frame)} reference rows scored in {latency:.0f} ms"
    ok = errors == 0 and latency <= budget_ms
    return SmokeResult(ok, len(frame), errors, round(latency, 3), message)

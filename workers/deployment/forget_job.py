"""forget_customer: erase one customer's personal data the service holds — predictions,
outcomes, and rows of every registered dataset that identifies customers by the key
column — and keep a record that it was done, without the customer's id."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import update

from api_client.registry_params import ForgetCustomerParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.errors import ArtifactCorrupt, ArtifactInUse, ArtifactMissing
from storage.models import Dataset, Job, utcnow
from storage.outcomes import OutcomeRepository
from workers.deployment.services import scoring_services
from workers.jobs.context import JobContext

PARQUET = "application/vnd.apache.parquet"
ERASED = "<erased>"


def run_forget_customer(ctx: JobContext, params: ForgetCustomerParams) -> dict[str, Any]:
    services = scoring_services(ctx.runtime)
    services.log_buffer.flush()  # nothing this process buffered escapes the erasure
    ctx.progress("predictions", 0, 3, "forget: prediction log")
    with ctx.session() as session:
        removed = services.log_store.forget(session, [params.customer_id])
        outcomes = OutcomeRepository(session, services.log_store).forget(
            [params.customer_id], removed.prediction_ids
        )
    ctx.progress("datasets", 1, 3, "forget: datasets")
    unreadable: dict[int, str] = {}
    datasets = _erase_from_datasets(ctx, params, unreadable)
    result = {
        "predictions_removed": removed.rows_removed,
        "prediction_files_rewritten": removed.files_rewritten + removed.files_deleted,
        "outcomes_removed": outcomes,
        "datasets_rewritten": len(datasets),
        "dataset_rows_removed": sum(datasets.values()),
        "datasets": [{"dataset_id": k, "rows_removed": v} for k, v in sorted(datasets.items())],
        # Datasets whose file is missing or damaged: not erased; restore them and run again.
        "unreadable_datasets": [
            {"dataset_id": k, "reason": v} for k, v in sorted(unreadable.items())
        ],
        "erased_at": utcnow().isoformat(),
        "actor": params.actor,
    }
    with ctx.session() as session:  # the record keeps no customer id
        session.execute(
            update(Job)
            .where(Job.id == ctx.job_id)
            .values(params={**params.model_dump(mode="json"), "customer_id": ERASED})
        )
    ctx.progress("done", 3, 3, f"forget: {sum(datasets.values())} dataset rows erased")
    return result


def _erase_from_datasets(
    ctx: JobContext, params: ForgetCustomerParams, unreadable: dict[int, str]
) -> dict[int, int]:
    """Each dataset whose schema has the key column, rewritten without the customer's rows
    as a new artifact; the old bytes are deleted unless another owner holds them too. The
    dataset keeps its id and records the erasure (its sha256 changes: lineage says why)."""
    with ctx.session() as session:
        candidates = [
            (d.id, d.stored_sha256)
            for d in session.query(Dataset).order_by(Dataset.id)
            if any(field.get("name") == params.key_column for field in d.schema or [])
        ]
    removed: dict[int, int] = {}
    store = ctx.runtime.store
    for dataset_id, sha256 in candidates:
        try:
            with store.open_verified(sha256) as handle:
                table = pq.read_table(handle)
        except (ArtifactMissing, ArtifactCorrupt) as exc:
            # Reported, not fatal: the other datasets are still erased; this one cannot
            # be read (and so holds nothing anyone can read) until its file is restored.
            unreadable[dataset_id] = f"{exc.code}: {exc}"
            continue
        keys = table.column(params.key_column).to_pandas().astype("string")
        hit = (keys == params.customer_id).fillna(False).to_numpy()
        if not hit.any():
            continue
        kept = table.filter(pa.array(~hit))
        buffer = io.BytesIO()
        pq.write_table(kept, buffer, compression="zstd")
        stored = store.put_bytes(buffer.getvalue())
        with ctx.session() as session:
            artifacts = ArtifactRepository(session)
            artifacts.record(stored, media_type=PARQUET)
            dataset = DatasetRepository(session).require(dataset_id)
            erasures = list((dataset.lineage or {}).get("erasures", []))
            erasures.append(
                {"at": utcnow().isoformat(), "rows_removed": int(hit.sum()), "job_id": ctx.job_id}
            )
            dataset.lineage = {**(dataset.lineage or {}), "erasures": erasures}
            dataset.stored_sha256, dataset.rows = stored.sha256, kept.num_rows
            artifacts.add_ref(stored.sha256, "dataset", str(dataset_id))
            artifacts.remove_ref(sha256, "dataset", str(dataset_id))
            session.flush()
            # The same bytes may belong to another owner too; it keeps them.
            with contextlib.suppress(ArtifactInUse):
                artifacts.delete_unreferenced(store, sha256)
        removed[dataset_id] = int(hit.sum())
    return removed

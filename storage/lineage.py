"""The whole chain behind a model version, JSON-ready: training job, study, the datasets it
was made from back to the raw inputs, and the version it was retrained from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from storage.models import Dataset, Job, ModelVersion


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _job_summary(session: Session, job_id: str | None) -> dict[str, Any] | None:
    job = session.get(Job, job_id) if job_id is not None else None
    if job is None:
        return None
    return {"id": job.id, "type": job.type, "status": job.status}


def _dataset(session: Session, dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "version": dataset.version,
        "stored_sha256": dataset.stored_sha256,
        "rows": dataset.rows,
        "columns": dataset.columns,
        "source_uri": dataset.source_uri,
        "source_sha256": dataset.source_sha256,
        "pipeline_sha256": dataset.pipeline_sha256,
        "created_at": _iso(dataset.created_at),
        "created_by_job": _job_summary(session, dataset.created_by_job),
    }


def _dataset_chain(session: Session, dataset_id: int) -> list[Dataset]:
    """The dataset, then its parent, its parent's parent... (a cycle ends the walk)."""
    chain: list[Dataset] = []
    seen: set[int] = set()
    next_id: int | None = dataset_id
    while next_id is not None and next_id not in seen:
        dataset = session.get(Dataset, next_id)
        if dataset is None:
            break
        seen.add(next_id)
        chain.append(dataset)
        next_id = dataset.parent_id
    return chain


def lineage(session: Session, version: ModelVersion) -> dict[str, Any]:
    job = session.get(Job, version.job_id)
    chain = _dataset_chain(session, version.dataset_id)
    parent = session.get(ModelVersion, version.parent_id) if version.parent_id else None
    recorded = version.lineage or {}
    return {
        "version": {
            "id": version.id,
            "model_name": version.model_name,
            "version": version.version,
            "model_type": version.model_type,
            "family": version.family,
            "status": version.status,
            "created_at": _iso(version.created_at),
            "artifact_sha256": version.artifact_sha256,
            "reference_sha256": version.reference_sha256,
            "signed": bool(version.artifact_hmac),
            "library_versions": version.library_versions or {},
            "package_version": recorded.get("package_version"),
            "git_commit": recorded.get("git_commit"),
        },
        "training_job": None
        if job is None
        else {
            "id": job.id,
            "type": job.type,
            "status": job.status,
            "created_at": _iso(job.created_at),
            "finished_at": _iso(job.finished_at),
            "parent_id": job.parent_id,
        },
        "study": {"name": version.study_name},
        "datasets": [_dataset(session, dataset) for dataset in chain],
        # The root of the chain is what came from outside: its source file and hash.
        "raw_inputs": [
            {"source_uri": root.source_uri, "source_sha256": root.source_sha256}
            for root in chain[-1:]
        ],
        "parent_version": None
        if parent is None
        else {"id": parent.id, "version": parent.version, "model_name": parent.model_name},
        "dataset_sha256_matches": bool(chain) and version.dataset_sha256 == chain[0].stored_sha256,
    }

"""Repository of registered datasets (Parquet artifacts with lineage)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.artifacts import ArtifactRepository
from storage.errors import Conflict, NotFound
from storage.models import Dataset

_VERSION_RACE_RETRIES = 5


class DatasetRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, dataset_id: int) -> Dataset | None:
        return self.session.get(Dataset, dataset_id)

    def require(self, dataset_id: int) -> Dataset:
        dataset = self.get(dataset_id)
        if dataset is None:
            raise NotFound(f"no dataset {dataset_id}")
        return dataset

    def latest(self, name: str) -> Dataset | None:
        return self.session.scalar(
            select(Dataset).where(Dataset.name == name).order_by(Dataset.version.desc()).limit(1)
        )

    def versions(self, name: str) -> list[Dataset]:
        return list(
            self.session.scalars(
                select(Dataset).where(Dataset.name == name).order_by(Dataset.version)
            )
        )

    def by_source(self, name: str, source_sha256: str) -> Dataset | None:
        return self.session.scalar(
            select(Dataset)
            .where(Dataset.name == name, Dataset.source_sha256 == source_sha256)
            .limit(1)
        )

    def by_job(self, job_id: str, name: str) -> Dataset | None:
        return self.session.scalar(
            select(Dataset).where(Dataset.created_by_job == job_id, Dataset.name == name)
        )

    def _same(self, dataset: Dataset) -> Dataset | None:
        """The registered dataset this one would duplicate: same job output, or same
        source bytes under the same name."""
        if dataset.created_by_job is not None:
            existing = self.by_job(dataset.created_by_job, dataset.name)
            if existing is not None:
                return existing
        if dataset.source_sha256 is not None:
            return self.by_source(dataset.name, dataset.source_sha256)
        return None

    def register(self, dataset: Dataset) -> tuple[Dataset, bool]:
        """Register the next version of ``dataset.name``; idempotent per (job, name) and per
        (name, source sha256).

        Returns (dataset, created). The stored artifact (and the pipeline artifact of a
        derived dataset) must be recorded already; this adds the dataset's references to them
        in the same transaction.
        """
        existing = self._same(dataset)
        if existing is not None:
            return existing, False
        for _ in range(_VERSION_RACE_RETRIES):
            current = self.session.scalar(
                select(func.max(Dataset.version)).where(Dataset.name == dataset.name)
            )
            dataset.version = (current or 0) + 1
            try:
                with self.session.begin_nested():
                    self.session.add(dataset)
                    self.session.flush()
            except IntegrityError:
                existing = self._same(dataset)
                if existing is not None:
                    return existing, False
                continue
            artifacts = ArtifactRepository(self.session)
            artifacts.add_ref(dataset.stored_sha256, "dataset", str(dataset.id))
            if dataset.pipeline_sha256 is not None:
                artifacts.add_ref(dataset.pipeline_sha256, "dataset_pipeline", str(dataset.id))
            return dataset, True
        raise Conflict(f"could not allocate a version for dataset {dataset.name!r}")

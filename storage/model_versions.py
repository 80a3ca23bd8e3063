"""Repository of registered model versions (immutable once registered)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.artifacts import ArtifactRepository
from storage.errors import Conflict, NotFound
from storage.models import ModelVersion, VersionEvent
from storage.semver import FIRST_VERSION, VersionBump, next_version, semver_key

__all__ = [
    "FIRST_VERSION",
    "ModelVersionRepository",
    "VersionBump",
    "next_patch",
    "next_version",
    "semver_key",
]

_VERSION_RACE_RETRIES = 5


def next_patch(version: str | None) -> str:
    """The version after ``version`` with only the patch bumped (1.0.0 first)."""
    if version is None:
        return FIRST_VERSION
    major, minor, patch = semver_key(version)
    return f"{major}.{minor}.{patch + 1}"


class ModelVersionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, version_id: int) -> ModelVersion | None:
        return self.session.get(ModelVersion, version_id)

    def require(self, version_id: int) -> ModelVersion:
        found = self.get(version_id)
        if found is None:
            raise NotFound(f"no model version {version_id}")
        return found

    def by_job(self, job_id: str) -> ModelVersion | None:
        return self.session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))

    def find(self, model_name: str, version: str) -> ModelVersion | None:
        return self.session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == model_name, ModelVersion.version == version
            )
        )

    def versions(self, model_name: str) -> list[ModelVersion]:
        """Every version of a model, oldest version number first."""
        rows = self.session.scalars(
            select(ModelVersion).where(ModelVersion.model_name == model_name)
        )
        return sorted(rows, key=lambda row: semver_key(row.version))

    def latest(self, model_name: str) -> ModelVersion | None:
        versions = self.versions(model_name)
        return versions[-1] if versions else None

    def register(self, version: ModelVersion) -> tuple[ModelVersion, bool]:
        """Register ``version`` under the next version number of its model. The caller may
        set ``version.version``; otherwise ``next_version`` decides it against the latest
        version of the model and ``training["semver"]`` records the bump (part, reason,
        previous version). Idempotent per training job: a redelivered finalize gets the row
        the first delivery wrote. The artifacts must be recorded already; this adds the
        version's references to them."""
        existing = self.by_job(version.job_id)
        if existing is not None:
            return existing, False
        chosen = version.version
        training = dict(version.training or {})
        for _ in range(_VERSION_RACE_RETRIES):
            if not chosen:
                latest = self.latest(version.model_name)
                bump = next_version(latest, version)
                version.version = bump.version
                # A new dict, so the JSON column is seen as changed.
                version.training = {
                    **training,
                    "semver": {
                        "part": bump.part,
                        "reason": bump.reason,
                        "previous": latest.version if latest else None,
                    },
                }
            try:
                with self.session.begin_nested():
                    self.session.add(version)
                    self.session.flush()
            except IntegrityError:
                existing = self.by_job(version.job_id)
                if existing is not None:
                    return existing, False
                if chosen:
                    raise Conflict(f"{version.model_name} {chosen} is already registered") from None
                continue
            artifacts = ArtifactRepository(self.session)
            artifacts.add_ref(version.artifact_sha256, "model_version", str(version.id))
            artifacts.add_ref(version.reference_sha256, "model_reference", str(version.id))
            # The first step of the version's life, so its history starts at registration.
            self.session.add(
                VersionEvent(
                    version_id=version.id,
                    from_status=None,
                    to_status="registered",
                    actor=f"job:{version.job_id}",
                    reason="registered by its training job",
                    at=version.created_at,
                )
            )
            self.session.flush()
            return version, True
        raise Conflict(f"could not allocate a version for model {version.model_name!r}")

"""Repository of artifact records and their references (the reference count is the row count)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.artifact_store import ArtifactStore, StoredObject
from storage.db import insert_for
from storage.errors import ArtifactInUse, NotFound
from storage.models import Artifact, ArtifactRef


class ArtifactRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, stored: StoredObject, media_type: str | None = None) -> Artifact:
        """Record an object put in the store (idempotent: same bytes, same row)."""
        statement = (
            insert_for(self.session, Artifact)
            .values(
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                uri=stored.uri,
                media_type=media_type,
            )
            .on_conflict_do_nothing(index_elements=["sha256"])
        )
        self.session.execute(statement)
        artifact = self.session.get(Artifact, stored.sha256)
        assert artifact is not None
        return artifact

    def get(self, sha256: str) -> Artifact | None:
        return self.session.get(Artifact, sha256)

    def add_ref(self, sha256: str, owner_kind: str, owner_id: str) -> None:
        """Hold ``sha256`` for an owner (idempotent)."""
        if self.session.get(Artifact, sha256) is None:
            raise NotFound(f"no artifact {sha256} recorded")
        self.session.execute(
            insert_for(self.session, ArtifactRef)
            .values(sha256=sha256, owner_kind=owner_kind, owner_id=owner_id)
            .on_conflict_do_nothing(index_elements=["sha256", "owner_kind", "owner_id"])
        )

    def remove_ref(self, sha256: str, owner_kind: str, owner_id: str) -> None:
        self.session.execute(
            delete(ArtifactRef).where(
                ArtifactRef.sha256 == sha256,
                ArtifactRef.owner_kind == owner_kind,
                ArtifactRef.owner_id == owner_id,
            )
        )

    def refcount(self, sha256: str) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(ArtifactRef).where(ArtifactRef.sha256 == sha256)
            )
            or 0
        )

    def unreferenced(self, created_before: datetime) -> list[str]:
        """Artifacts no owner holds, older than ``created_before`` (a grace period for
        objects put but not yet referenced by the job that wrote them)."""
        held = select(ArtifactRef.sha256)
        return list(
            self.session.scalars(
                select(Artifact.sha256).where(
                    Artifact.sha256.not_in(held), Artifact.created_at < created_before
                )
            )
        )

    def delete_unreferenced(self, store: ArtifactStore, sha256: str) -> None:
        """Delete an artifact that nothing references; refuses (ArtifactInUse) otherwise.

        The row goes first, under a row lock: a concurrent ``add_ref`` either sees no row
        (and fails) or holds the foreign key that makes this delete fail.
        """
        artifact = self.session.get(Artifact, sha256, with_for_update=True)
        if artifact is None:
            raise NotFound(f"no artifact {sha256} recorded")
        count = self.refcount(sha256)
        if count:
            raise ArtifactInUse(f"artifact {sha256} is referenced {count} time(s); not deleted")
        self.session.delete(artifact)
        self.session.flush()
        store.delete(sha256)

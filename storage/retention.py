"""Retention of archived versions' artifacts: plan what may go (a dry run), then delete it.

A version's artifacts go only when it has been archived for the whole retention window,
no alias named it during that window, and nothing but the version itself holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.artifact_store import ArtifactStore
from storage.artifacts import ArtifactRepository
from storage.errors import ArtifactInUse, NotFound
from storage.models import Artifact, ArtifactRef, ModelAlias, ModelVersion
from storage.registry import AliasRepository, VersionLifecycle

# The owner kinds under which ModelVersionRepository.register holds a version's artifacts.
OWN_KINDS = ("model_version", "model_reference")


@dataclass(frozen=True)
class RetentionCandidate:
    version_id: int
    model_name: str
    version: str
    artifact_sha256s: tuple[str, ...]
    archived_at: datetime


@dataclass(frozen=True)
class Kept:
    version_id: int
    reason: str


def _shared_with_others(session: Session, sha256: str, version_id: int) -> list[str]:
    """Owners other than the version itself holding ``sha256`` ("kind:id")."""
    refs = session.scalars(select(ArtifactRef).where(ArtifactRef.sha256 == sha256))
    return [
        f"{ref.owner_kind}:{ref.owner_id}"
        for ref in refs
        if not (ref.owner_kind in OWN_KINDS and ref.owner_id == str(version_id))
    ]


def plan_artifact_retention(
    session: Session, *, now: datetime, older_than: timedelta
) -> tuple[list[RetentionCandidate], list[Kept]]:
    """Archived versions whose artifacts may be deleted, and archived ones kept (and why).
    Writes nothing."""
    cutoff = now - older_than
    lifecycle, aliases = VersionLifecycle(session), AliasRepository(session)
    candidates: list[RetentionCandidate] = []
    kept: list[Kept] = []
    archived = session.scalars(
        select(ModelVersion).where(ModelVersion.status == "archived").order_by(ModelVersion.id)
    )
    for version in archived:
        archived_at = lifecycle.entered_at(version.id, "archived")
        if archived_at is None or archived_at > cutoff:
            since = archived_at.isoformat() if archived_at else "an unknown time"
            kept.append(Kept(version.id, f"archived at {since}, less than {older_than} ago"))
            continue
        pointing = session.scalars(
            select(ModelAlias.alias).where(ModelAlias.version_id == version.id)
        ).all()
        if pointing:
            kept.append(Kept(version.id, f"alias {', '.join(sorted(pointing))} points to it"))
            continue
        if aliases.held_within(version.id, cutoff):
            kept.append(Kept(version.id, f"an alias named it within the last {older_than}"))
            continue
        deletable: list[str] = []
        shared: list[str] = []
        for sha in dict.fromkeys((version.artifact_sha256, version.reference_sha256)):
            others = _shared_with_others(session, sha, version.id)
            if others:
                shared.append(f"{sha[:12]} (also held by {', '.join(sorted(others))})")
            else:
                deletable.append(sha)
        if not deletable:
            kept.append(Kept(version.id, f"its artifacts are shared: {'; '.join(shared)}"))
            continue
        candidates.append(
            RetentionCandidate(
                version_id=version.id,
                model_name=version.model_name,
                version=version.version,
                artifact_sha256s=tuple(deletable),
                archived_at=archived_at,
            )
        )
    return candidates, kept


def _delete_artifact(
    session: Session, artifacts: ArtifactRepository, store: ArtifactStore, sha256: str
) -> bool:
    """Delete an artifact nothing holds any more; False when someone holds it again."""
    try:
        with session.begin_nested():
            artifacts.delete_unreferenced(store, sha256)
        return True
    except (ArtifactInUse, NotFound):
        return False  # referenced meanwhile (keep it), or deleted by an earlier run
    except IntegrityError:
        # The version row itself still names the artifact (model_versions has a NOT NULL
        # foreign key to it), so its record row must stay: delete only the bytes, under
        # the same lock-and-count check delete_unreferenced makes.
        if session.get(Artifact, sha256, with_for_update=True) is None:
            return False
        if artifacts.refcount(sha256):
            return False
        store.delete(sha256)
        return True


def apply_artifact_retention(
    session: Session,
    store: ArtifactStore,
    candidates: list[RetentionCandidate],
    *,
    actor: str,
) -> list[str]:
    """Delete the planned artifacts and mark their versions purged; the deleted sha256s.
    Safe to run twice: a version no longer archived (purged, or restored) is skipped."""
    artifacts, lifecycle = ArtifactRepository(session), VersionLifecycle(session)
    deleted: list[str] = []
    for candidate in candidates:
        version = session.get(
            ModelVersion, candidate.version_id, with_for_update=True, populate_existing=True
        )
        if version is None or version.status != "archived":
            continue
        if session.scalar(select(ModelAlias.alias).where(ModelAlias.version_id == version.id)):
            continue  # aliased since the plan was made
        # A purged version holds nothing: its refs on shared artifacts go too, so the
        # other owners alone decide when those are deleted.
        for sha in {version.artifact_sha256, version.reference_sha256}:
            for kind in OWN_KINDS:
                artifacts.remove_ref(sha, kind, str(version.id))
        gone = [
            sha
            for sha in candidate.artifact_sha256s
            if _delete_artifact(session, artifacts, store, sha)
        ]
        shorts = ", ".join(sha[:12] for sha in gone) or "none (held by other owners)"
        lifecycle.transition(
            version.id,
            "purged",
            actor=actor,
            reason=f"artifacts deleted by retention: {shorts}",
        )
        deleted.extend(gone)
    return deleted

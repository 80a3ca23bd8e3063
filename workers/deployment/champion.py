"""The champion alias follows what a model's deployment serves, and a version's lifecycle
follows its aliases: champion -> deployed; another alias -> staged; the version the
champion left -> staged if another alias still holds it, else archived."""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.model_versions import ModelVersionRepository
from storage.models import AliasEvent, ModelVersion
from storage.registry import AliasRepository, VersionLifecycle

CHAMPION = "champion"


def move_champion(
    session: Session, model_name: str, version_id: int, *, actor: str, reason: str
) -> AliasEvent | None:
    """Point the champion alias at ``version_id`` (None when it named it already) and
    record the versions' new stages."""
    event = AliasRepository(session).set(
        model_name, CHAMPION, version_id, actor=actor, reason=reason
    )
    if event is not None:
        record_stages(session, event, actor)
    return event


def record_stages(session: Session, event: AliasEvent, actor: str) -> None:
    """champion -> the version is deployed; another alias -> staged (unless deployed). The
    version the champion left is staged if another alias still holds it, else archived."""
    lifecycle = VersionLifecycle(session)
    versions = ModelVersionRepository(session)
    reason = f"{event.alias} set by {actor}"
    assert event.to_version_id is not None
    target = versions.require(event.to_version_id)
    if event.alias == CHAMPION:
        _move(lifecycle, target, "deployed", actor, reason)
    elif target.status in ("registered", "archived"):
        _move(lifecycle, target, "staged", actor, reason)
    if event.alias == CHAMPION and event.from_version_id is not None:
        left = versions.require(event.from_version_id)
        still_held = any(
            alias.version_id == left.id
            for alias in AliasRepository(session).aliases_of(left.model_name)
        )
        stage = "staged" if still_held else "archived"
        _move(lifecycle, left, stage, actor, f"replaced as champion by {target.version}")


def _move(
    lifecycle: VersionLifecycle, version: ModelVersion, status: str, actor: str, reason: str
) -> None:
    if version.status == status:
        return
    if version.status == "archived" and status == "deployed":
        lifecycle.transition(version.id, "staged", actor=actor, reason=reason)
    lifecycle.transition(version.id, status, actor=actor, reason=reason)

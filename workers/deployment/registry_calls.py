"""The registry's answers: versions, lineage, alias moves and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api_client.contract import ErrorCode
from api_client.registry_params import (
    AliasHistoryRequest,
    LineageRequest,
    SetAliasRequest,
    VersionsRequest,
)
from storage.db import transaction
from storage.lineage import lineage
from storage.model_versions import ModelVersionRepository
from storage.models import AliasEvent, ModelVersion
from storage.registry import AliasConflict, AliasRepository, VersionLifecycle
from workers.deployment.errors import ScoringError
from workers.deployment.resolve import require_model, require_version
from workers.deployment.services import ScoringServices
from workers.deployment.serving import ServingVersion, load_pipeline_for, pipeline_cache
from workers.training.versions import version_summary

CHAMPION = "champion"


def versions(services: ScoringServices, request: VersionsRequest) -> dict[str, Any]:
    with transaction(services.sessions) as session:
        rows = require_model(session, request.model_name)
        held: dict[int, list[str]] = {}
        for alias in AliasRepository(session).aliases_of(request.model_name):
            held.setdefault(alias.version_id, []).append(alias.alias)
        listed = [
            {
                **version_summary(row),
                "status": row.status,
                "aliases": sorted(held.get(row.id, [])),
                "created_at": _iso(row.created_at),
            }
            for row in rows
        ]
    return {"model_name": request.model_name, "versions": listed}


def version_lineage(services: ScoringServices, request: LineageRequest) -> dict[str, Any]:
    with transaction(services.sessions) as session:
        row = require_version(session, request.model_name, request.version)
        return lineage(session, row)


def set_alias(services: ScoringServices, request: SetAliasRequest) -> dict[str, Any]:
    """Verify the version's artifact (a version that cannot load never serves), then move
    the alias with a compare-and-set and record the version's new stage."""
    with transaction(services.sessions) as session:
        row = require_version(session, request.model_name, request.version)
        serving = ServingVersion.of(row)
    settings = services.settings
    load_pipeline_for(
        serving,
        services.store,
        pipeline_cache(settings.pipeline_cache_size),
        settings.artifact_hmac_key,
    )
    actor = request.actor or "client"
    with transaction(services.sessions) as session:
        aliases = AliasRepository(session)
        try:
            event = aliases.set(
                request.model_name,
                request.alias,
                serving.id,
                actor=actor,
                reason=request.reason,
                expected_revision=request.expected_revision,
            )
        except AliasConflict as exc:
            raise ScoringError(ErrorCode.ALIAS_CONFLICT, str(exc)) from exc
        if event is not None:
            _record_stages(session, event, actor)
        current = aliases.get(request.model_name, request.alias)
        assert current is not None
        return {
            "model_name": request.model_name,
            "alias": request.alias,
            "version": serving.version,
            "revision": current.revision,
            "changed": event is not None,
            "event": _event(session, event) if event is not None else None,
        }


def alias_history(services: ScoringServices, request: AliasHistoryRequest) -> dict[str, Any]:
    with transaction(services.sessions) as session:
        require_model(session, request.model_name)
        aliases = AliasRepository(session)
        events = aliases.history(request.model_name, request.alias)
        answer: dict[str, Any] = {
            "model_name": request.model_name,
            "alias": request.alias,
            "events": [_event(session, event) for event in events],
        }
        if request.at is not None and request.alias is not None:
            version_id = aliases.at(request.model_name, request.alias, request.at)
            answer["at"] = _iso(request.at)
            answer["version"] = _semver(session, version_id)
        return answer


def _record_stages(session: Session, event: AliasEvent, actor: str) -> None:
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


def _event(session: Session, event: AliasEvent) -> dict[str, Any]:
    return {
        "alias": event.alias,
        "revision": event.revision,
        "from_version": _semver(session, event.from_version_id),
        "to_version": _semver(session, event.to_version_id),
        "actor": event.actor,
        "reason": event.reason,
        "at": _iso(event.at),
    }


def _semver(session: Session, version_id: int | None) -> str | None:
    if version_id is None:
        return None
    row = ModelVersionRepository(session).get(version_id)
    return row.version if row is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

"""The registry's answers: versions, lineage, alias moves and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api_client.contract import ErrorCode
from api_client.deployment_params import DeployRequest
from api_client.registry_params import (
    AliasHistoryRequest,
    LineageRequest,
    SetAliasRequest,
    VersionsRequest,
)
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.lineage import lineage
from storage.model_versions import ModelVersionRepository
from storage.models import AliasEvent
from storage.registry import AliasConflict, AliasRepository
from workers.deployment.champion import CHAMPION, record_stages
from workers.deployment.errors import ScoringError
from workers.deployment.resolve import require_model, require_version
from workers.deployment.services import ScoringServices
from workers.deployment.serving import ServingVersion, pipeline_for
from workers.training.versions import version_summary


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
    the alias with a compare-and-set and record the version's new stage. The champion of
    a deployed model moves through its deployment (an immediate rollout), so the alias
    and what scoring routes to never disagree."""
    if request.alias == CHAMPION and _deployed(services, request.model_name):
        return _deploy_champion(services, request)
    with transaction(services.sessions) as session:
        row = require_version(session, request.model_name, request.version)
        serving = ServingVersion.of(row)
    pipeline_for(serving, services.store, services.settings)
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
            record_stages(session, event, actor)
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


def _deployed(services: ScoringServices, model_name: str) -> bool:
    with transaction(services.sessions) as session:
        return DeploymentRepository(session).get(model_name) is not None


def _deploy_champion(services: ScoringServices, request: SetAliasRequest) -> dict[str, Any]:
    from workers.deployment.deployment_calls import deploy  # it moves aliases: no cycle

    if request.expected_revision is not None:
        with transaction(services.sessions) as session:
            seen = AliasRepository(session).get(request.model_name, CHAMPION)
        revision = seen.revision if seen is not None else 0
        if revision != request.expected_revision:
            raise ScoringError(
                ErrorCode.ALIAS_CONFLICT,
                f"alias {request.model_name}/{CHAMPION} is at revision {revision}, not at "
                f"the expected revision {request.expected_revision}; read it again and retry",
            )
    deployed = deploy(
        services,
        DeployRequest(
            model_name=request.model_name,
            version=request.version,
            strategy="immediate",
            reason=request.reason,
            actor=request.actor,
        ),
    )
    with transaction(services.sessions) as session:
        current = AliasRepository(session).get(request.model_name, CHAMPION)
        assert current is not None
        last = AliasRepository(session).history(request.model_name, CHAMPION)[-1]
        return {
            "model_name": request.model_name,
            "alias": CHAMPION,
            "version": request.version,
            "revision": current.revision,
            "changed": deployed["changed"],
            "event": _event(session, last) if deployed["changed"] else None,
            "deployment": {"state": deployed["state"], "revision": deployed["revision"]},
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

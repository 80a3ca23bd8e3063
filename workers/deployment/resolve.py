"""Which registered version serves a model: the one its alias (champion by default) names."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_client.contract import ErrorCode
from storage.model_versions import ModelVersionRepository
from storage.models import ModelVersion
from storage.registry import AliasRepository
from workers.deployment.errors import ScoringError


def require_model(session: Session, model_name: str) -> list[ModelVersion]:
    """Every version of the model, oldest first; ScoringError when it has none."""
    versions = ModelVersionRepository(session).versions(model_name)
    if not versions:
        raise ScoringError(
            ErrorCode.MODEL_NOT_FOUND,
            f"no model named {model_name!r} is registered; check the name, or train it "
            "first (client.submit_train)",
        )
    return versions


def require_version(session: Session, model_name: str, version: str) -> ModelVersion:
    versions = require_model(session, model_name)
    for row in versions:
        if row.version == version:
            return row
    known = ", ".join(row.version for row in versions[-5:])
    raise ScoringError(
        ErrorCode.VERSION_NOT_FOUND,
        f"model {model_name!r} has no version {version}; its latest are {known}",
    )


def version_for_alias(session: Session, model_name: str, alias: str) -> ModelVersion:
    """The version ``alias`` names now; ScoringError when the model or the alias is unset."""
    current = AliasRepository(session).get(model_name, alias)
    if current is None:
        # An alias names a version of its model, so only here can the model be unknown.
        known = session.scalar(
            select(ModelVersion.id).where(ModelVersion.model_name == model_name).limit(1)
        )
        if known is None:
            require_model(session, model_name)  # raises model_not_found
        raise ScoringError(
            ErrorCode.ALIAS_NOT_SET,
            f"model {model_name!r} has no {alias!r} alias, so nothing serves it; set one "
            f"with client.set_alias({model_name!r}, {alias!r}, version, reason)",
        )
    return ModelVersionRepository(session).require(current.version_id)

"""A version ready to serve: what scoring needs of its registry row, and its pipeline loaded
through the process's verified cache."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from api_client.train_params import PROBLEM_OF, Problem
from storage.artifact_store import ArtifactStore
from storage.models import ModelVersion
from workers.deployment.errors import ScoringError
from workers.deployment.pipeline_cache import ArtifactRefused, PipelineCache, load_verified
from workers.settings import Settings


@dataclass(frozen=True)
class ServingVersion:
    """The registry facts scoring uses, copied out of the session that read them."""

    id: int
    model_name: str
    version: str
    problem: Problem
    classes: tuple[str, ...]
    threshold: float
    input_schema: tuple[dict[str, Any], ...]
    artifact_sha256: str
    artifact_hmac: str | None
    library_versions: dict[str, str]

    @classmethod
    def of(cls, row: ModelVersion) -> ServingVersion:
        training = row.training or {}
        return cls(
            id=row.id,
            model_name=row.model_name,
            version=row.version,
            problem=training.get("problem") or PROBLEM_OF[row.model_type],
            classes=tuple(str(c) for c in training.get("classes") or ()),
            threshold=float((row.decision or {}).get("threshold", 0.5)),
            input_schema=tuple(dict(field) for field in row.input_schema or ()),
            artifact_sha256=row.artifact_sha256,
            artifact_hmac=row.artifact_hmac,
            library_versions=dict(row.library_versions or {}),
        )


log = logging.getLogger("cipml.scoring")

_caches: dict[int, PipelineCache] = {}
_caches_lock = threading.Lock()


def pipeline_cache(capacity: int) -> PipelineCache:
    """This process's cache (one per capacity setting; a forked child builds its own lazily
    because the parent never loads a pipeline)."""
    with _caches_lock:
        cache = _caches.get(capacity)
        if cache is None:
            cache = _caches[capacity] = PipelineCache(capacity)
        return cache


def load_pipeline_for(
    version: ServingVersion, store: ArtifactStore, cache: PipelineCache, hmac_key: str | None
) -> Any:
    """The version's fitted pipeline: verified (sha256, HMAC when signed, library versions,
    allow-list) the first time this process loads it, then served from memory."""
    try:
        return cache.get(
            version.artifact_sha256,
            lambda: load_verified(
                store,
                version.artifact_sha256,
                version.library_versions,
                version.artifact_hmac,
                hmac_key,
            ),
        )
    except ArtifactRefused as exc:
        # Alert-worthy: a registered file that fails its checks was damaged or tampered with.
        log.error(
            "refused to load %s %s: %s check failed",
            version.model_name,
            version.version,
            exc.check,
            extra={"data": {"artifact_sha256": version.artifact_sha256, "check": exc.check}},
        )
        raise ScoringError(
            exc.code,
            f"{version.model_name} {version.version} cannot be loaded: {exc}",
        ) from exc


def pipeline_for(version: ServingVersion, store: ArtifactStore, settings: Settings) -> Any:
    """``load_pipeline_for`` with this process's cache and the configured HMAC key."""
    return load_pipeline_for(
        version, store, pipeline_cache(settings.pipeline_cache_size), settings.artifact_hmac_key
    )

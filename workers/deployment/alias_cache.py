"""Which version an alias serves, cached per process and re-checked on every call.

A registered version never changes (its row is immutable; only its lifecycle status moves,
which scoring does not read), so its ``ServingVersion`` is kept by version id. The alias is
what moves: every call reads the alias row, one primary-key lookup on a plain connection
without a transaction, and serves the version it names now. A move is therefore seen by the
very next call; only the version's registry facts are reused. A missing alias row takes the
full path (``version_for_alias``), which tells an unknown model from an unset alias.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.db import transaction
from storage.model_versions import ModelVersionRepository
from storage.registry import current_alias
from workers.deployment.resolve import version_for_alias
from workers.deployment.serving import ServingVersion


class AliasCache:
    """The ``ServingVersion`` of recently served version ids of one database."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._versions: OrderedDict[int, ServingVersion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version_id: int) -> ServingVersion | None:
        with self._lock:
            version = self._versions.get(version_id)
            if version is not None:
                self._versions.move_to_end(version_id)
            return version

    def put(self, version: ServingVersion) -> None:
        with self._lock:
            self._versions[version.id] = version
            self._versions.move_to_end(version.id)
            while len(self._versions) > self.capacity:
                self._versions.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._versions.clear()


# One cache per session factory (so per database): version ids of two databases differ.
_caches: weakref.WeakKeyDictionary[sessionmaker[Session], AliasCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def alias_cache(sessions: sessionmaker[Session]) -> AliasCache:
    with _caches_lock:
        cache = _caches.get(sessions)
        if cache is None:
            cache = _caches[sessions] = AliasCache()
        return cache


def serving_version(sessions: sessionmaker[Session], model_name: str, alias: str) -> ServingVersion:
    """The version ``alias`` names now (ScoringError when the model or the alias is unset),
    its registry facts from this process's cache when it served that version before."""
    engine = sessions.kw.get("bind")
    cache = alias_cache(sessions)
    if isinstance(engine, Engine):
        named = current_alias(engine, model_name, alias)
        if named is not None:
            cached = cache.get(named[0])
            if cached is not None and cached.model_name == model_name:
                return cached
    # Not cached, or the alias is missing: the full checks and their errors.
    with transaction(sessions) as session:
        version = ServingVersion.of(version_for_alias(session, model_name, alias))
    cache.put(version)
    return version


def serving_version_by_id(sessions: sessionmaker[Session], version_id: int) -> ServingVersion:
    """A version named by a deployment arm, from this process's cache when it served it."""
    cache = alias_cache(sessions)
    cached = cache.get(version_id)
    if cached is not None:
        return cached
    with transaction(sessions) as session:
        version = ServingVersion.of(ModelVersionRepository(session).require(version_id))
    cache.put(version)
    return version

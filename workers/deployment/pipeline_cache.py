"""Pipelines loaded only after every check passes, and kept per process.

Checks, in order: the bytes hash to the recorded sha256 (the store does it on every read),
the HMAC signature when the version has one, then ``load_pipeline``'s library versions and
type allow-list. A cache hit skips the disk: its bytes were verified when they were loaded,
and the cache is keyed by that sha256, so a changed file can only be a different key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from storage.artifact_store import ArtifactStore
from storage.errors import ArtifactCorrupt, ArtifactMissing
from storage.signing import verify_hmac
from workers.training.artifact import IncompatibleArtifact, UntrustedArtifact, load_pipeline

Check = Literal["sha256", "hmac", "library_versions", "allow_list", "not_a_pipeline", "missing"]
_CODES: dict[str, str] = {
    "sha256": "artifact_corrupt",
    "hmac": "artifact_corrupt",
    "missing": "artifact_not_found",
}


class ArtifactRefused(Exception):
    """A model artifact failed a check and was not loaded; ``check`` names the check."""

    def __init__(self, check: Check, message: str) -> None:
        super().__init__(message)
        self.check: Check = check
        self.code: str = _CODES.get(check, "artifact_refused")


def load_verified(
    store: ArtifactStore,
    artifact_sha256: str,
    library_versions: dict[str, str],
    artifact_hmac: str | None,
    hmac_key: str | None,
) -> Any:
    """The pipeline stored under ``artifact_sha256``, or ArtifactRefused saying which check
    failed. An unsigned artifact loads whether or not a key is set (versions registered
    before signing was turned on keep working); a signed one needs the key."""
    try:
        data = store.read_bytes(artifact_sha256)
    except ArtifactMissing as exc:
        raise ArtifactRefused(
            "missing",
            f"model artifact {artifact_sha256} is not in the artifact store: {exc}. Restore it "
            "from a backup or retrain the model",
        ) from exc
    except ArtifactCorrupt as exc:
        raise ArtifactRefused("sha256", f"sha256 check failed: {exc}") from exc
    if artifact_hmac:
        if not hmac_key:
            raise ArtifactRefused(
                "hmac",
                f"model artifact {artifact_sha256} is signed but this worker has no key to "
                "check the signature; set CIPML_ARTIFACT_HMAC_KEY to the key it was signed with",
            )
        if not verify_hmac(data, hmac_key, artifact_hmac):
            raise ArtifactRefused(
                "hmac",
                f"HMAC check failed for model artifact {artifact_sha256}: it was changed after "
                "it was signed, or signed with another key. Check CIPML_ARTIFACT_HMAC_KEY is the "
                "key used at registration; if it is, restore the artifact or retrain the model",
            )
    try:
        return load_pipeline(data, library_versions)
    except IncompatibleArtifact as exc:
        raise ArtifactRefused("library_versions", f"library version check failed: {exc}") from exc
    except UntrustedArtifact as exc:
        raise ArtifactRefused(
            "allow_list",
            f"allow-list check failed: {exc}. Retrain the model with the supported model types",
        ) from exc
    except ValueError as exc:  # after its subclasses above
        raise ArtifactRefused(
            "not_a_pipeline",
            f"artifact {artifact_sha256} is not a model pipeline: {exc}; register the "
            "version from a training job's artifact",
        ) from exc


class PipelineCache:
    """Thread-safe LRU of loaded pipelines keyed by artifact sha256.

    Loads run outside the cache lock (other keys stay served), under a per-key lock so that
    threads asking for the same key at once load it once and the rest wait for it.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _hit(self, sha256: str) -> tuple[bool, Any]:
        """(found, pipeline), counting a hit; call with ``_lock`` held."""
        if sha256 not in self._items:
            return False, None
        self._items.move_to_end(sha256)
        self.hits += 1
        return True, self._items[sha256]

    def get(self, sha256: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            found, pipeline = self._hit(sha256)
            if found:
                return pipeline
            key_lock = self._loading.setdefault(sha256, threading.Lock())
        with key_lock:
            with self._lock:
                found, pipeline = self._hit(sha256)  # another thread loaded it while we waited
                if found:
                    return pipeline
                self.misses += 1
            try:
                pipeline = load()
            except BaseException:
                with self._lock:
                    self._loading.pop(sha256, None)
                raise
            with self._lock:
                # Stored and unmarked as loading at once, so no thread can start a second load.
                self._loading.pop(sha256, None)
                self._items[sha256] = pipeline
                self._items.move_to_end(sha256)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
                    self.evictions += 1
            return pipeline

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

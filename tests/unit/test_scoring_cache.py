"""Verified pipeline loads (sha256, HMAC, library versions, allow-list) and the per-process
LRU cache in front of them."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from storage.artifact_store import ArtifactStore
from storage.signing import artifact_hmac, verify_hmac
from workers.deployment.pipeline_cache import ArtifactRefused, PipelineCache, load_verified
from workers.training.artifact import dump_pipeline, library_versions

X = np.arange(40, dtype=float).reshape(20, 2)
Y = np.array([0, 1] * 10)
KEY = "s3cret-key"


def fitted(*steps: tuple[str, Any]) -> Pipeline:
    chosen = list(steps) or [("scale", StandardScaler()), ("model", LogisticRegression())]
    return Pipeline(chosen).fit(X, Y)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path))


def put(store: ArtifactStore, pipeline: Any) -> tuple[str, bytes]:
    data = dump_pipeline(pipeline)
    return store.put_bytes(data).sha256, data


def refused(store: ArtifactStore, sha256: str, **kwargs: Any) -> ArtifactRefused:
    args: dict[str, Any] = {
        "library_versions": library_versions(),
        "artifact_hmac": None,
        "hmac_key": None,
    }
    args.update(kwargs)
    with pytest.raises(ArtifactRefused) as caught:
        load_verified(store, sha256, **args)
    return caught.value


def test_signing_round_trip_matches_hmac_sha256() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert artifact_hmac(b"what do ya want for nothing?", "Jefe") == expected
    assert verify_hmac(b"what do ya want for nothing?", "Jefe", expected)
    assert verify_hmac(b"what do ya want for nothing?", "Jefe", expected.upper())
    assert not verify_hmac(b"what do ya want for nothing!", "Jefe", expected)
    assert not verify_hmac(b"what do ya want for nothing?", "jefe", expected)
    assert not verify_hmac(b"x", "Jefe", "not hex \u00e9")


def test_an_unsigned_artifact_loads_with_or_without_a_key(store: ArtifactStore) -> None:
    sha256, _ = put(store, fitted())
    for key in (None, KEY):
        pipeline = load_verified(store, sha256, library_versions(), None, key)
        assert isinstance(pipeline, Pipeline)
        assert pipeline.predict(X).tolist() == fitted().predict(X).tolist()


def test_a_tampered_file_is_refused_by_sha256(store: ArtifactStore) -> None:
    sha256, _ = put(store, fitted())
    path = Path(store.path_of(sha256))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    error = refused(store, sha256)
    assert (error.check, error.code) == ("sha256", "artifact_corrupt")
    assert "sha256 check failed" in str(error)


def test_a_missing_artifact_is_not_found(store: ArtifactStore) -> None:
    error = refused(store, "0" * 64)
    assert (error.check, error.code) == ("missing", "artifact_not_found")
    assert "0" * 64 in str(error)


def test_a_signed_artifact_needs_the_right_key(store: ArtifactStore) -> None:
    sha256, data = put(store, fitted())
    signature = artifact_hmac(data, KEY)
    assert isinstance(load_verified(store, sha256, library_versions(), signature, KEY), Pipeline)

    no_key = refused(store, sha256, artifact_hmac=signature, hmac_key=None)
    assert (no_key.check, no_key.code) == ("hmac", "artifact_corrupt")
    assert "CIPML_ARTIFACT_HMAC_KEY" in str(no_key)
    assert refused(store, sha256, artifact_hmac=signature, hmac_key="").check == "hmac"

    wrong = refused(store, sha256, artifact_hmac=signature, hmac_key="another-key")
    assert (wrong.check, wrong.code) == ("hmac", "artifact_corrupt")
    assert "HMAC check failed" in str(wrong)
    # A signature that is not the bytes' (e.g. the row was edited) fails the same way.
    other = artifact_hmac(b"other bytes", KEY)
    assert refused(store, sha256, artifact_hmac=other, hmac_key=KEY).check == "hmac"


def test_another_scikit_learn_minor_is_refused(store: ArtifactStore) -> None:
    sha256, _ = put(store, fitted())
    major, minor = library_versions()["scikit-learn"].split(".")[:2]
    versions = dict(library_versions(), **{"scikit-learn": f"{major}.{int(minor) + 1}.0"})
    error = refused(store, sha256, library_versions=versions)
    assert (error.check, error.code) == ("library_versions", "artifact_refused")
    assert "scikit-learn" in str(error)


@pytest.mark.parametrize(
    ("step", "type_name"),
    [
        (("model", SVC()), "sklearn.svm._classes.SVC"),
        (("sin", FunctionTransformer(func=np.sin)), "numpy.sin"),
    ],
)
def test_a_type_off_the_allow_list_is_refused(
    store: ArtifactStore, step: tuple[str, Any], type_name: str
) -> None:
    pipeline = fitted(("scale", StandardScaler()), step)
    sha256, _ = put(store, pipeline)
    error = refused(store, sha256)
    assert (error.check, error.code) == ("allow_list", "artifact_refused")
    assert type_name in str(error)


def test_an_artifact_that_is_not_a_pipeline_is_refused(store: ArtifactStore) -> None:
    sha256, _ = put(store, StandardScaler().fit(X))
    error = refused(store, sha256)
    assert (error.check, error.code) == ("not_a_pipeline", "artifact_refused")
    assert "StandardScaler" in str(error)


def test_a_cache_hit_skips_the_disk(store: ArtifactStore) -> None:
    sha256, _ = put(store, fitted())
    cache = PipelineCache(2)

    def load() -> Any:
        return load_verified(store, sha256, library_versions(), None, None)

    first = cache.get(sha256, load)
    store.delete(sha256)  # a hit must not read it again
    assert cache.get(sha256, load) is first
    assert (cache.hits, cache.misses) == (1, 1)
    cache.clear()
    with pytest.raises(ArtifactRefused):
        cache.get(sha256, load)  # a miss reads (and verifies) from disk again
    assert (cache.hits, cache.misses, len(cache)) == (1, 2, 0)


def test_lru_evicts_the_least_recently_used() -> None:
    cache = PipelineCache(2)
    loads: list[str] = []

    def loader(name: str) -> Any:
        def load() -> str:
            loads.append(name)
            return f"pipeline-{name}"

        return load

    assert cache.get("a", loader("a")) == "pipeline-a"
    assert cache.get("b", loader("b")) == "pipeline-b"
    assert cache.get("a", loader("a")) == "pipeline-a"  # a is now the most recent
    assert cache.get("c", loader("c")) == "pipeline-c"  # evicts b
    assert (cache.hits, cache.misses, cache.evictions) == (1, 3, 1)
    assert cache.get("a", loader("a")) == "pipeline-a"
    assert cache.get("b", loader("b")) == "pipeline-b"  # reloaded, evicts c
    assert loads == ["a", "b", "c", "b"]
    assert (cache.hits, cache.misses, cache.evictions, len(cache)) == (2, 4, 2, 2)
    with pytest.raises(ValueError, match="at least 1"):
        PipelineCache(0)


def test_a_failed_load_is_not_cached() -> None:
    cache = PipelineCache(1)

    def fail() -> Any:
        raise ArtifactRefused("missing", "gone")

    with pytest.raises(ArtifactRefused):
        cache.get("a", fail)
    assert cache.get("a", lambda: "loaded") == "loaded"
    assert (cache.hits, cache.misses) == (0, 2)


def test_concurrent_gets_of_one_key_load_it_once() -> None:
    cache = PipelineCache(2)
    calls = 0
    calls_lock = threading.Lock()

    def slow_load() -> object:
        nonlocal calls
        with calls_lock:
            calls += 1
        time.sleep(0.05)
        return object()

    start = threading.Barrier(8)
    results: list[object] = []

    def worker() -> None:
        start.wait()
        results.append(cache.get("a", slow_load))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == 1
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert (cache.hits, cache.misses, cache.evictions) == (7, 1, 0)


def test_a_slow_load_does_not_block_other_keys() -> None:
    cache = PipelineCache(2)
    release = threading.Event()

    def blocked() -> str:
        release.wait(5)
        return "slow"

    thread = threading.Thread(target=lambda: cache.get("slow", blocked))
    thread.start()
    try:
        assert cache.get("fast", lambda: "fast") == "fast"  # served while "slow" loads
    finally:
        release.set()
        thread.join()
    assert cache.get("slow", lambda: "never") == "slow"

"""Artifact store (content-addressed, atomic, verified) and dataset registration."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage.artifact_store import ArtifactStore
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.errors import ArtifactCorrupt, ArtifactInUse, ArtifactMissing, Conflict, NotFound
from storage.jobs import JobRepository
from storage.models import Dataset, Job


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def test_put_is_content_addressed_and_verified(store: ArtifactStore, tmp_path: Path) -> None:
    data = b"customer,spend\n1,10\n"
    stored = store.put_bytes(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size_bytes == len(data)
    assert store.put_bytes(data) == stored  # same bytes, same object
    assert store.read_bytes(stored.sha256) == data
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (3 << 20))
    big = store.put_file(source)
    with store.open_verified(big.sha256) as handle:
        assert handle.read() == source.read_bytes()
    assert list((tmp_path / "artifacts" / "tmp").iterdir()) == []  # no temporary leftovers


def test_a_changed_file_is_refused(store: ArtifactStore) -> None:
    stored = store.put_bytes(b"model bytes")
    Path(store.path_of(stored.sha256)).write_bytes(b"model bytez")
    with pytest.raises(ArtifactCorrupt, match="load is refused"):
        store.read_bytes(stored.sha256)
    with pytest.raises(ArtifactCorrupt), store.open_verified(stored.sha256):
        pass
    with pytest.raises(ArtifactCorrupt):
        store.local_path(stored.sha256)


def test_missing_object(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactMissing):
        store.read_bytes("0" * 64)


def test_fsspec_memory_store_round_trip() -> None:
    store = ArtifactStore("memory://cipml-test")
    stored = store.put_bytes(b"remote")
    assert stored.uri.startswith("memory://")
    with store.open_verified(stored.sha256) as handle:
        assert handle.read() == b"remote"


def _job(session: Session, job_id: str) -> None:
    JobRepository(session).create(
        Job(
            id=job_id,
            type="diagnostics.probe",
            params={},
            status="RUNNING",
            attempts=1,
            cancel_requested=False,
        )
    )


def _dataset(sha: str, job: str | None, name: str = "orders") -> Dataset:
    return Dataset(
        name=name,
        source_sha256=sha,
        stored_sha256=sha,
        rows=2,
        columns=2,
        schema=[{"name": "a", "dtype": "int64"}],
        source_uri="file:///x.csv",
        created_by_job=job,
    )


def test_referenced_artifacts_are_never_deleted(
    sessions: sessionmaker[Session], store: ArtifactStore
) -> None:
    stored = store.put_bytes(b"parquet bytes")
    with transaction(sessions) as session:
        _job(session, "j1")
        ArtifactRepository(session).record(stored)
        DatasetRepository(session).register(_dataset(stored.sha256, "j1"))
    with transaction(sessions) as session:
        artifacts = ArtifactRepository(session)
        assert artifacts.refcount(stored.sha256) == 1
        with pytest.raises(ArtifactInUse):
            artifacts.delete_unreferenced(store, stored.sha256)
    assert store.exists(stored.sha256)
    with transaction(sessions) as session:
        ArtifactRepository(session).remove_ref(stored.sha256, "dataset", "1")
    # the dataset row's own foreign key still holds the artifact row
    with pytest.raises(Conflict), transaction(sessions) as session:
        ArtifactRepository(session).delete_unreferenced(store, stored.sha256)
    assert store.exists(stored.sha256)


def test_unreferenced_artifacts_are_collected(
    sessions: sessionmaker[Session], store: ArtifactStore
) -> None:
    orphan = store.put_bytes(b"orphan")
    with transaction(sessions) as session:
        ArtifactRepository(session).record(orphan)
    later = datetime.now(UTC) + timedelta(seconds=1)
    with transaction(sessions) as session:
        artifacts = ArtifactRepository(session)
        assert artifacts.unreferenced(later) == [orphan.sha256]
        assert artifacts.unreferenced(later - timedelta(days=1)) == []  # grace period
        artifacts.delete_unreferenced(store, orphan.sha256)
    assert not store.exists(orphan.sha256)
    with transaction(sessions) as session, pytest.raises(NotFound):
        ArtifactRepository(session).add_ref(orphan.sha256, "dataset", "9")


def test_dataset_versions_and_idempotence_per_job(
    sessions: sessionmaker[Session], store: ArtifactStore
) -> None:
    first, second = store.put_bytes(b"v1"), store.put_bytes(b"v2")
    with transaction(sessions) as session:
        _job(session, "j1")
        _job(session, "j2")
        ArtifactRepository(session).record(first)
        ArtifactRepository(session).record(second)
    with transaction(sessions) as session:
        v1, created = DatasetRepository(session).register(_dataset(first.sha256, "j1"))
        assert created and v1.version == 1
    with transaction(sessions) as session:  # the same job delivered again
        again, created = DatasetRepository(session).register(_dataset(first.sha256, "j1"))
        assert not created and again.id == v1.id
    with transaction(sessions) as session:
        datasets = DatasetRepository(session)
        v2, created = datasets.register(_dataset(second.sha256, "j2"))
        assert created and v2.version == 2
        assert [d.version for d in datasets.versions("orders")] == [1, 2]
        latest = datasets.latest("orders")
        assert latest is not None and latest.id == v2.id
        found = datasets.by_source("orders", first.sha256)
        assert found is not None and found.id == v1.id


def test_put_file_can_move_a_scratch_file_in(store: ArtifactStore, tmp_path: Path) -> None:
    scratch = store.scratch_dir()
    assert scratch is not None
    first = Path(scratch) / "out.parquet"
    first.write_bytes(b"parquet body")
    stored = store.put_file(first, move=True)
    assert not first.exists()  # renamed into place, not copied
    assert store.read_bytes(stored.sha256) == b"parquet body"
    again = Path(scratch) / "again.parquet"
    again.write_bytes(b"parquet body")
    assert store.put_file(again, move=True) == stored and not again.exists()
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"copied")
    assert store.read_bytes(store.put_file(elsewhere).sha256) == b"copied"
    assert elsewhere.exists()  # without move the caller keeps its file
    assert ArtifactStore("memory://x").scratch_dir() is None

"""The model registry on SQLite and PostgreSQL: aliases moved by compare-and-set with their
history, the version lifecycle, lineage back to the raw input, and artifact retention."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage.artifact_store import ArtifactStore
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.errors import NotFound
from storage.jobs import JobRepository
from storage.lineage import lineage
from storage.model_versions import ModelVersionRepository
from storage.models import AliasEvent, Dataset, Job, ModelVersion, utcnow
from storage.registry import (
    AliasConflict,
    AliasRepository,
    InvalidTransition,
    VersionLifecycle,
    check_alias,
)
from storage.retention import apply_artifact_retention, plan_artifact_retention

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def add_job(session: Session, job_id: str, *, type_: str = "train") -> Job:
    job, _ = JobRepository(session).create(
        Job(
            id=job_id,
            type=type_,
            params={},
            status="SUCCEEDED",
            attempts=0,
            cancel_requested=False,
            finished_at=T0,
        )
    )
    return job


def put(session: Session, store: ArtifactStore, data: bytes) -> str:
    stored = store.put_bytes(data)
    ArtifactRepository(session).record(stored)
    return stored.sha256


def add_dataset(session: Session, store: ArtifactStore, name: str = "customers") -> Dataset:
    sha = put(session, store, f"parquet of {name}".encode())
    dataset, _ = DatasetRepository(session).register(
        Dataset(name=name, stored_sha256=sha, rows=10, columns=3, schema=[])
    )
    return dataset


def add_version(
    session: Session,
    store: ArtifactStore,
    job_id: str,
    dataset: Dataset,
    *,
    model_name: str = "churn",
    artifact_sha256: str | None = None,
    **extra: object,
) -> ModelVersion:
    add_job(session, job_id)
    version, created = ModelVersionRepository(session).register(
        ModelVersion(
            model_name=model_name,
            version="",
            model_type="churn",
            family="hist_gradient_boosting",
            job_id=job_id,
            dataset_id=dataset.id,
            dataset_sha256=dataset.stored_sha256,
            study_name=job_id,
            artifact_sha256=artifact_sha256 or put(session, store, f"model {job_id}".encode()),
            reference_sha256=put(session, store, f"reference {job_id}".encode()),
            **extra,
        )
    )
    assert created
    return version


def three_versions(sessions: sessionmaker[Session], store: ArtifactStore) -> list[int]:
    with transaction(sessions) as session:
        dataset = add_dataset(session, store)
        return [add_version(session, store, f"t{i}", dataset).id for i in (1, 2, 3)]


def moves(events: list[AliasEvent]) -> list[tuple[int, int | None, int | None]]:
    return [(e.revision, e.from_version_id, e.to_version_id) for e in events]


# ---------------------------------------------------------------------------- aliases


def test_alias_moves_are_recorded_and_answer_what_it_named_when(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    v1, v2, _ = three_versions(sessions, ArtifactStore(str(tmp_path / "store")))
    t1, t2, t3 = T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        first = aliases.set("churn", "champion", v1, actor="alice", reason="first", at=t1)
        assert first is not None and first.revision == 1
        # A retry of the same move writes nothing.
        assert aliases.set("churn", "champion", v1, actor="alice", expected_revision=0) is None
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        moved = aliases.set("churn", "champion", v2, actor="bob", reason="better auc", at=t2)
        assert moved is not None and (moved.revision, moved.from_version_id) == (2, v1)
        current = aliases.get("churn", "champion")
        assert current is not None
        assert (current.version_id, current.revision, current.updated_by) == (v2, 2, "bob")
        assert [a.alias for a in aliases.aliases_of("churn")] == ["champion"]
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        removed = aliases.remove("churn", "champion", actor="carol", reason="incident", at=t3)
        assert (removed.revision, removed.to_version_id) == (3, None)
        assert aliases.get("churn", "champion") is None
        with pytest.raises(NotFound, match="no alias 'champion'"):
            aliases.remove("churn", "champion", actor="carol")
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        history = aliases.history("churn", "champion")
        assert moves(history) == [(1, None, v1), (2, v1, v2), (3, v2, None)]
        assert [(e.actor, e.reason) for e in history] == [
            ("alice", "first"),
            ("bob", "better auc"),
            ("carol", "incident"),
        ]
        assert [aliases.at("churn", "champion", when) for when in (
            T0,  # before the first set
            t1,  # the instant of the first set
            t1 + HOUR / 2,  # between moves
            t2,
            t3 - timedelta(seconds=1),
            t3,  # removed
            t3 + 24 * HOUR,
        )] == [None, v1, v1, v2, v2, None, None]  # fmt: skip
        # v1 was named until t2, v2 until t3; neither is named now.
        assert aliases.held_within(v1, t2) and not aliases.held_within(v1, t2 + HOUR / 60)
        assert aliases.held_within(v2, t3) and not aliases.held_within(v2, t3 + HOUR / 60)
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        again = aliases.set("churn", "champion", v1, actor="dave", at=t3 + HOUR)
        # Revisions keep counting after a removal, so the history stays one sequence.
        assert again is not None and (again.revision, again.from_version_id) == (4, None)
        assert aliases.held_within(v1, t3 + 2 * HOUR)  # it points there now
        assert [e.revision for e in aliases.history("churn")] == [1, 2, 3, 4]


def test_alias_names_are_checked() -> None:
    assert check_alias("champion") == "champion"
    assert check_alias("eu-west_2") == "eu-west_2"
    for bad in ("", "Champion", "1st", "has space", "a" * 65):
        with pytest.raises(ValueError, match="invalid alias"):
            check_alias(bad)


def test_expected_revision_and_the_version_s_model_are_checked(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    v1, v2, v3 = three_versions(sessions, store)
    with transaction(sessions) as session:
        other = add_version(session, store, "clv1", add_dataset(session, store, "orders"))
        other.model_name = "clv"  # a version of another model
        aliases = AliasRepository(session)
        assert aliases.set("churn", "champion", v1, actor="a", expected_revision=0)
        with pytest.raises(AliasConflict, match="at revision 1, not at the expected revision 0"):
            aliases.set("churn", "champion", v2, actor="a", expected_revision=0)
        with pytest.raises(AliasConflict, match="expected revision 7"):
            aliases.set("churn", "champion", v2, actor="a", expected_revision=7)
        with pytest.raises(AliasConflict, match="not set"):
            aliases.set("churn", "challenger", v2, actor="a", expected_revision=1)
        with pytest.raises(NotFound, match=rf"model 'churn' has no version with id {other.id}"):
            aliases.set("churn", "champion", other.id, actor="a")
        with pytest.raises(NotFound, match="has no version with id 999999"):
            aliases.set("churn", "champion", 999999, actor="a")
        with pytest.raises(ValueError, match="invalid alias"):
            aliases.set("churn", "Champion", v1, actor="a")
        # The refusals rolled back nothing else: the transaction goes on.
        moved = aliases.set("churn", "champion", v3, actor="a", expected_revision=1)
        assert moved is not None and moved.revision == 2
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        assert moves(aliases.history("churn")) == [(1, None, v1), (2, v1, v3)]


@pytest.mark.parametrize("first_set", [False, True], ids=["move", "first-set"])
def test_racing_moves_from_the_same_revision_one_wins(
    sessions: sessionmaker[Session], tmp_path: Path, first_set: bool
) -> None:
    v1, v2, v3 = three_versions(sessions, ArtifactStore(str(tmp_path / "store")))
    seen = 0
    if not first_set:
        with transaction(sessions) as session:
            AliasRepository(session).set("churn", "champion", v1, actor="setup")
            seen = 1
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def move(target: int) -> None:
        barrier.wait()
        try:
            with transaction(sessions) as session:
                event = AliasRepository(session).set(
                    "churn", "champion", target, actor=f"mover-{target}", expected_revision=seen
                )
                assert event is not None
            outcomes[target] = "moved"
        except AliasConflict:
            outcomes[target] = "conflict"

    threads = [threading.Thread(target=move, args=(target,)) for target in (v2, v3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["conflict", "moved"]
    winner = next(target for target, outcome in outcomes.items() if outcome == "moved")
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        current = aliases.get("churn", "champion")
        assert current is not None and current.version_id == winner
        history = aliases.history("churn", "champion")
        assert [e.revision for e in history] == list(range(1, seen + 2))  # contiguous
        assert history[-1].to_version_id == winner
        assert history[-1].actor == f"mover-{winner}"


@pytest.mark.parametrize("first_set", [False, True], ids=["move", "first-set"])
def test_a_move_that_read_before_another_committed_loses_without_poisoning_its_transaction(
    sessions: sessionmaker[Session], tmp_path: Path, first_set: bool
) -> None:
    """Deterministic interleaving: A writes (uncommitted), B reads the old state and
    writes, A commits. On PostgreSQL B's compare-and-set then fails; SQLite serialises
    writers at BEGIN, so B only starts after A and simply moves on from A's state."""
    v1, v2, v3 = three_versions(sessions, ArtifactStore(str(tmp_path / "store")))
    if not first_set:
        with transaction(sessions) as session:
            AliasRepository(session).set("churn", "champion", v1, actor="setup")
    outcome: dict[str, object] = {}
    b_started = threading.Event()

    def b_moves() -> None:
        with transaction(sessions) as session:
            aliases = AliasRepository(session)
            b_started.set()
            try:
                outcome["event"] = aliases.set("churn", "champion", v3, actor="b")
            except AliasConflict as exc:
                outcome["conflict"] = str(exc)
            current = aliases.get("churn", "champion")  # the transaction still works
            outcome["seen_after"] = current.version_id if current else None

    with transaction(sessions) as session:
        assert AliasRepository(session).set("churn", "champion", v2, actor="a") is not None
        thread = threading.Thread(target=b_moves)
        thread.start()
        b_started.wait(5)
        time.sleep(0.5)  # let B read and reach its write (it blocks on A's row)
    thread.join(30)
    assert not thread.is_alive()
    with transaction(sessions) as session:
        aliases = AliasRepository(session)
        current = aliases.get("churn", "champion")
        revisions = [e.revision for e in aliases.history("churn", "champion")]
    base = 0 if first_set else 1
    if sessions.kw["bind"].dialect.name == "postgresql":
        assert "someone else meanwhile" in str(outcome["conflict"])
        assert outcome["seen_after"] == v2
        assert current is not None and current.version_id == v2
        assert revisions == list(range(1, base + 2))
    else:
        assert outcome["event"] is not None and outcome["seen_after"] == v3
        assert current is not None and current.version_id == v3
        assert revisions == list(range(1, base + 3))


# ---------------------------------------------------------------------------- lifecycle


def test_lifecycle_allows_only_its_moves_and_records_each(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    v1, _, _ = three_versions(sessions, ArtifactStore(str(tmp_path / "store")))
    with transaction(sessions) as session:
        lifecycle = VersionLifecycle(session)
        (registered,) = lifecycle.events(v1)
        assert (registered.from_status, registered.to_status) == (None, "registered")
        assert (registered.actor, registered.reason) == ("job:t1", "registered by its training job")
        with pytest.raises(InvalidTransition, match="from 'registered' to 'purged'") as refused:
            lifecycle.transition(v1, "purged", actor="ops")
        assert "staged, deployed, archived" in str(refused.value)
        assert refused.value.code == "invalid_transition"
        start = registered.at  # later moves come after the registration
        for step, status in enumerate(("staged", "deployed", "archived", "staged", "archived")):
            event = lifecycle.transition(v1, status, actor="ops", at=start + (step + 1) * HOUR)
            assert event is not None and event.to_status == status
        assert lifecycle.transition(v1, "archived", actor="ops") is None  # already there
        assert lifecycle.entered_at(v1, "archived") == start + 5 * HOUR  # the last entry
        assert lifecycle.entered_at(v1, "purged") is None
        lifecycle.transition(v1, "purged", actor="retention", at=start + 6 * HOUR)
        with pytest.raises(InvalidTransition, match="nothing"):
            lifecycle.transition(v1, "staged", actor="ops")
        with pytest.raises(NotFound):
            lifecycle.transition(999999, "staged", actor="ops")
    with transaction(sessions) as session:
        version = ModelVersionRepository(session).require(v1)
        assert version.status == "purged"
        steps = [(e.from_status, e.to_status) for e in VersionLifecycle(session).events(v1)]
        assert steps == [
            (None, "registered"),
            ("registered", "staged"),
            ("staged", "deployed"),
            ("deployed", "archived"),
            ("archived", "staged"),
            ("staged", "archived"),
            ("archived", "purged"),
        ]


# ---------------------------------------------------------------------------- lineage


def test_lineage_follows_the_datasets_back_to_the_raw_input(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with transaction(sessions) as session:
        add_job(session, "ingest-1", type_="ingest")
        add_job(session, "features-1", type_="build_features")
        raw, _ = DatasetRepository(session).register(
            Dataset(
                name="events",
                stored_sha256=put(session, store, b"events parquet"),
                rows=100,
                columns=4,
                schema=[],
                source_uri="file:///data/events.csv",
                source_sha256="5" * 64,
                created_by_job="ingest-1",
            )
        )
        pipeline = put(session, store, b"feature pipeline")
        features, _ = DatasetRepository(session).register(
            Dataset(
                name="customer_features",
                stored_sha256=put(session, store, b"features parquet"),
                rows=20,
                columns=9,
                schema=[],
                created_by_job="features-1",
                parent_id=raw.id,
                pipeline_sha256=pipeline,
            )
        )
        first = add_version(session, store, "train-1", features)
        second = add_version(
            session,
            store,
            "train-2",
            features,
            parent_id=first.id,
            artifact_hmac="f" * 64,
            library_versions={"scikit-learn": "1.5.2"},
            lineage={"package_version": "0.5.0", "git_commit": "abc123"},
        )
        ids = (raw.id, features.id, first.id, second.id, first.artifact_sha256)
    raw_id, features_id, first_id, second_id, first_artifact = ids
    with transaction(sessions) as session:
        repo = ModelVersionRepository(session)
        chain = lineage(session, repo.require(second_id))
        json.dumps(chain)  # JSON-ready
        assert chain["version"]["id"] == second_id
        assert chain["version"]["version"] == "1.0.1"
        assert chain["version"]["signed"] is True
        assert chain["version"]["package_version"] == "0.5.0"
        assert chain["version"]["git_commit"] == "abc123"
        assert chain["version"]["library_versions"] == {"scikit-learn": "1.5.2"}
        assert chain["version"]["status"] == "registered"
        assert chain["training_job"]["id"] == "train-2"
        assert chain["training_job"]["finished_at"] == T0.isoformat()
        assert chain["study"] == {"name": "train-2"}
        datasets = chain["datasets"]
        assert [d["id"] for d in datasets] == [features_id, raw_id]
        assert datasets[0]["pipeline_sha256"] == pipeline
        assert datasets[0]["created_by_job"] == {
            "id": "features-1",
            "type": "build_features",
            "status": "SUCCEEDED",
        }
        assert datasets[1]["created_by_job"]["type"] == "ingest"
        assert chain["raw_inputs"] == [
            {"source_uri": "file:///data/events.csv", "source_sha256": "5" * 64}
        ]
        assert chain["parent_version"] == {
            "id": first_id,
            "version": "1.0.0",
            "model_name": "churn",
        }
        assert chain["dataset_sha256_matches"] is True
        earlier = lineage(session, repo.require(first_id))
        assert earlier["parent_version"] is None and earlier["version"]["signed"] is False
        assert earlier["version"]["artifact_sha256"] == first_artifact
        assert earlier["version"]["package_version"] is None
        # A version whose recorded hash is not its dataset's says so.
        tampered = repo.require(first_id)
        tampered.dataset_sha256 = "0" * 64
        assert lineage(session, tampered)["dataset_sha256_matches"] is False
        session.rollback()


# ---------------------------------------------------------------------------- retention


def test_retention_purges_only_long_archived_unaliased_unshared_versions(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    now, window = utcnow(), timedelta(days=30)
    long_ago, lately = now - timedelta(days=40), now - timedelta(days=2)
    with transaction(sessions) as session:
        dataset = add_dataset(session, store)
        new = {name: add_version(session, store, name, dataset) for name in (
            "old", "deployed", "recent", "aliased_lately", "aliased_now", "shared"
        )}  # fmt: skip
        # Same model bytes as the deployed version; its own reference file.
        new["partial"] = add_version(
            session, store, "partial", dataset, artifact_sha256=new["deployed"].artifact_sha256
        )
        ArtifactRepository(session).add_ref(new["shared"].reference_sha256, "dataset", "42")
        ArtifactRepository(session).add_ref(new["shared"].artifact_sha256, "export", "x")
        ids = {name: version.id for name, version in new.items()}
        files = {
            name: (version.artifact_sha256, version.reference_sha256)
            for name, version in new.items()
        }
        lifecycle, aliases = VersionLifecycle(session), AliasRepository(session)
        lifecycle.transition(ids["deployed"], "deployed", actor="ops", at=long_ago)
        for name in ("old", "aliased_lately", "aliased_now", "shared", "partial"):
            lifecycle.transition(ids[name], "archived", actor="ops", at=long_ago)
        lifecycle.transition(ids["recent"], "archived", actor="ops", at=lately)
        aliases.set("churn", "champion", ids["aliased_lately"], actor="ops", at=long_ago)
        aliases.set("churn", "champion", ids["deployed"], actor="ops", at=now - timedelta(days=5))
        aliases.set("churn", "shadow", ids["aliased_now"], actor="ops", at=long_ago)

    def exists(name: str) -> list[bool]:
        return [store.exists(sha) for sha in files[name]]

    with transaction(sessions) as session:  # the dry run
        candidates, kept = plan_artifact_retention(session, now=now, older_than=window)
    assert {c.version_id: c.artifact_sha256s for c in candidates} == {
        ids["old"]: files["old"],
        ids["partial"]: (files["partial"][1],),  # its model file is the deployed one's
    }
    assert all(c.archived_at == long_ago for c in candidates)
    reasons = {k.version_id: k.reason for k in kept}
    assert set(reasons) == {ids[n] for n in ("recent", "aliased_lately", "aliased_now", "shared")}
    assert "less than 30 days" in reasons[ids["recent"]]
    assert "within the last 30 days" in reasons[ids["aliased_lately"]]
    assert "alias shadow points to it" in reasons[ids["aliased_now"]]
    assert "dataset:42" in reasons[ids["shared"]] and "export:x" in reasons[ids["shared"]]
    assert all(all(exists(name)) for name in files)  # planning deleted nothing

    with transaction(sessions) as session:
        deleted = apply_artifact_retention(session, store, candidates, actor="retention")
    assert sorted(deleted) == sorted([*files["old"], files["partial"][1]])
    assert exists("old") == [False, False]
    assert exists("partial") == [True, False]
    for name in ("deployed", "recent", "aliased_lately", "aliased_now", "shared"):
        assert exists(name) == [True, True], name
    with transaction(sessions) as session:
        repo, lifecycle = ModelVersionRepository(session), VersionLifecycle(session)
        statuses = {name: repo.require(ids[name]).status for name in ids}
        assert statuses == {
            "old": "purged",
            "partial": "purged",
            "deployed": "deployed",
            "recent": "archived",
            "aliased_lately": "archived",
            "aliased_now": "archived",
            "shared": "archived",
        }
        purge = lifecycle.events(ids["old"])[-1]
        assert purge.actor == "retention"
        assert purge.reason == (
            f"artifacts deleted by retention: {files['old'][0][:12]}, {files['old'][1][:12]}"
        )
        artifacts = ArtifactRepository(session)
        assert artifacts.refcount(files["old"][0]) == 0
        # The purged version let go of the shared model file: the deployed one holds it.
        assert artifacts.refcount(files["partial"][0]) == 1
        # Applying the same plan again, or planning again, changes nothing.
        assert apply_artifact_retention(session, store, candidates, actor="retention") == []
        again, _ = plan_artifact_retention(session, now=now, older_than=window)
        assert again == []
    assert exists("deployed") == [True, True]

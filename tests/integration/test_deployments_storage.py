"""Deployments and sweep periods on SQLite and PostgreSQL: saves by compare-and-set with
their events, the fast arms read, rollout ticks and sweep periods claimed once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage.artifact_store import ArtifactStore
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.deployments import (
    ArmRecord,
    DeploymentConflict,
    DeploymentRecord,
    DeploymentRepository,
    EventRecord,
    LiveArms,
    current_arms,
)
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository
from storage.models import Dataset, Job, ModelVersion
from storage.sweeps import PeriodClaim, claim_period, claims, period_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def put(session: Session, store: ArtifactStore, data: bytes) -> str:
    stored = store.put_bytes(data)
    ArtifactRepository(session).record(stored)
    return stored.sha256


def versions(sessions: sessionmaker[Session], tmp_path: Path, count: int = 3) -> list[int]:
    """``count`` registered versions of model "churn"; their ids."""
    store = ArtifactStore(str(tmp_path / "store"))
    with transaction(sessions) as session:
        dataset, _ = DatasetRepository(session).register(
            Dataset(
                name="customers",
                stored_sha256=put(session, store, b"parquet"),
                rows=10,
                columns=3,
                schema=[],
            )
        )
        ids = []
        for i in range(count):
            job_id = f"train-{i}"
            JobRepository(session).create(
                Job(id=job_id, type="train", params={}, status="SUCCEEDED", attempts=0)
            )
            version, _ = ModelVersionRepository(session).register(
                ModelVersion(
                    model_name="churn",
                    version="",
                    model_type="churn",
                    family="hist_gradient_boosting",
                    job_id=job_id,
                    dataset_id=dataset.id,
                    dataset_sha256=dataset.stored_sha256,
                    study_name=job_id,
                    artifact_sha256=put(session, store, f"model {i}".encode()),
                    reference_sha256=put(session, store, f"reference {i}".encode()),
                )
            )
            ids.append(version.id)
        return ids


def canary(model_name: str, stable: int, candidate: int, weight: float) -> DeploymentRecord:
    return DeploymentRecord(
        model_name=model_name,
        strategy="canary",
        state="running",
        config={"steps": [0.05, 0.25, 1.0], "min_samples": 200},
        arms=(
            ArmRecord("stable", stable, 1.0 - weight),
            ArmRecord("candidate", candidate, weight),
        ),
        stable_version_id=stable,
        candidate_version_id=candidate,
        previous_version_id=None,
        step=0,
        step_started_at=T0,
        started_at=T0,
        memory={"errors": {"stable": 0, "candidate": 0}, "seen": [1, 2]},
        rollout=1,
    )


def event(kind: str, at: datetime, **details: object) -> EventRecord:
    return EventRecord(
        at=at, actor="controller", kind=kind, reason=f"{kind} reason", details=details
    )


def arms_of(record: DeploymentRecord) -> list[tuple[str, int, float]]:
    return [(a.role, a.version_id, a.weight) for a in record.arms]


def race(count: int, work: Callable[[int], str]) -> list[str]:
    """Run ``work(i)`` in ``count`` threads released together; their outcomes."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        outcomes.append(work(i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(outcomes)


# ---------------------------------------------------------------------------- deployments


def test_a_deployment_round_trips_and_every_save_is_an_event(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    v1, v2, _ = versions(sessions, tmp_path)
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        assert repo.get("churn") is None
        saved = repo.save(canary("churn", v1, v2, 0.05), event("started", T0, step=0))
        # Arms come back ordered by role; the record gains its id and first revision.
        assert arms_of(saved) == [("candidate", v2, 0.05), ("stable", v1, 0.95)]
        assert (saved.revision, saved.updated_at) == (1, T0)
        assert saved.id is not None
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        loaded = repo.get("churn")
        assert loaded == saved
        assert repo.get_by_id(saved.id) == saved
        assert loaded.config == {"steps": [0.05, 0.25, 1.0], "min_samples": 200}
        assert loaded.memory == {"errors": {"stable": 0, "candidate": 0}, "seen": [1, 2]}
        assert loaded.started_at.tzinfo is not None and loaded.started_at == T0
        assert loaded.step_started_at == T0
        stepped = repo.save(
            replace(
                loaded,
                arms=(ArmRecord("stable", v1, 0.75), ArmRecord("candidate", v2, 0.25)),
                step=1,
                step_started_at=T0 + MINUTE,
                memory={"errors": {"stable": 1, "candidate": 0}},
            ),
            event("stepped", T0 + MINUTE, step=1),
        )
        assert (stepped.revision, stepped.updated_at) == (2, T0 + MINUTE)
        promoted = repo.save(
            replace(
                stepped,
                state="promoted",
                arms=(ArmRecord("stable", v2, 1.0),),
                stable_version_id=v2,
                candidate_version_id=None,
                previous_version_id=v1,
            ),
            event("promoted", T0 + 2 * MINUTE),
        )
        assert promoted.revision == 3
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        loaded = repo.get("churn")
        assert loaded is not None and loaded == promoted
        assert (loaded.stable_version_id, loaded.candidate_version_id) == (v2, None)
        assert loaded.previous_version_id == v1
        history = repo.events(saved.id)
        assert [(e.revision, e.kind, e.state, e.rollout) for e in history] == [
            (1, "started", "running", 1),
            (2, "stepped", "running", 1),
            (3, "promoted", "promoted", 1),
        ]
        assert [e.at for e in history] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
        assert history[0].details == {"step": 0}
        assert (history[0].actor, history[0].reason) == ("controller", "started reason")
        # Each event holds the arms as that save left them.
        assert [[(a.role, a.version_id, a.weight) for a in e.arms] for e in history] == [
            [("candidate", v2, 0.05), ("stable", v1, 0.95)],
            [("candidate", v2, 0.25), ("stable", v1, 0.75)],
            [("stable", v2, 1.0)],
        ]
        latest = repo.events(saved.id, limit=2)
        assert [e.revision for e in latest] == [2, 3]  # the last two, oldest first
        assert latest == history[1:]
        assert repo.get_by_id(saved.id + 1000) is None
        assert repo.events(saved.id + 1000) == []


def test_a_stale_save_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    v1, v2, v3 = versions(sessions, tmp_path)
    with transaction(sessions) as session:
        first = DeploymentRepository(session).save(canary("churn", v1, v2, 0.05), event("a", T0))
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        second = repo.save(replace(first, step=1), event("b", T0 + MINUTE))
        with pytest.raises(
            DeploymentConflict, match=r"is at revision 2, this save expected revision 1"
        ):
            repo.save(replace(first, candidate_version_id=v3), event("stale", T0 + MINUTE))
        with pytest.raises(DeploymentConflict, match="this save expected none"):
            repo.save(canary("churn", v1, v3, 0.5), event("again", T0 + MINUTE))
        # The refusals wrote nothing and the transaction goes on.
        assert repo.get("churn") == second
        assert [e.kind for e in repo.events(second.id)] == ["a", "b"]  # type: ignore[arg-type]
        third = repo.save(replace(second, state="paused"), event("c", T0 + 2 * MINUTE))
        assert third.revision == 3
    with transaction(sessions) as session:
        loaded = DeploymentRepository(session).get("churn")
        assert loaded is not None and (loaded.state, loaded.revision) == ("paused", 3)
        assert arms_of(loaded) == [("candidate", v2, 0.05), ("stable", v1, 0.95)]


@pytest.mark.parametrize("existing", [False, True], ids=["create", "update"])
def test_racing_saves_of_one_revision_one_wins(
    sessions: sessionmaker[Session], tmp_path: Path, existing: bool
) -> None:
    v1, v2, v3 = versions(sessions, tmp_path)
    base = canary("churn", v1, v2, 0.05)
    if existing:
        with transaction(sessions) as session:
            base = DeploymentRepository(session).save(base, event("started", T0))
    targets = (v2, v3)

    def save(i: int) -> str:
        record = replace(base, arms=(ArmRecord("stable", targets[i], 1.0),))
        try:
            with transaction(sessions) as session:
                DeploymentRepository(session).save(record, event(f"saver-{i}", T0 + MINUTE))
                time.sleep(0.2)  # hold the write, so the other save really waits on it
            return f"saved {targets[i]}"
        except DeploymentConflict:
            return "conflict"

    outcomes = race(2, save)
    assert outcomes[0] == "conflict" and outcomes[1].startswith("saved ")
    winner = int(outcomes[1].split()[1])
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        loaded = repo.get("churn")
        assert loaded is not None and loaded.revision == base.revision + 1
        assert arms_of(loaded) == [("stable", winner, 1.0)]
        history = repo.events(loaded.id)  # type: ignore[arg-type]
        assert [e.revision for e in history] == list(range(1, base.revision + 2))
        assert history[-1].kind == f"saver-{targets.index(winner)}"


def test_active_lists_the_deployments_in_the_given_states(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    v1, v2, _ = versions(sessions, tmp_path)
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        for name, state in (("a", "running"), ("b", "promoted"), ("c", "paused"), ("d", "running")):
            repo.save(replace(canary(name, v1, v2, 0.1), state=state), event("started", T0))
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        running = repo.active({"running", "paused"})
        assert [(d.model_name, d.state) for d in running] == [
            ("a", "running"),
            ("c", "paused"),
            ("d", "running"),
        ]
        assert all(len(d.arms) == 2 for d in running)
        assert [d.model_name for d in repo.active(["promoted"])] == ["b"]
        assert repo.active(["rolled_back"]) == []
        assert repo.active([]) == []


def test_current_arms_reads_the_latest_committed_arms(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    v1, v2, _ = versions(sessions, tmp_path)
    engine = sessions.kw["bind"]
    assert current_arms(engine, "churn") is None
    with transaction(sessions) as session:
        first = DeploymentRepository(session).save(canary("churn", v1, v2, 0.05), event("a", T0))
    assert current_arms(engine, "churn") == LiveArms(
        1, 1, (ArmRecord("candidate", v2, 0.05), ArmRecord("stable", v1, 0.95))
    )
    with transaction(sessions) as session:
        DeploymentRepository(session).save(
            replace(first, arms=(ArmRecord("stable", v2, 1.0),)), event("b", T0 + MINUTE)
        )
    assert current_arms(engine, "churn") == LiveArms(2, 1, (ArmRecord("stable", v2, 1.0),))
    assert current_arms(engine, "other") is None


def test_a_deployment_without_arms_reads_as_no_arms(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    v1, v2, _ = versions(sessions, tmp_path)
    with transaction(sessions) as session:
        DeploymentRepository(session).save(
            replace(canary("churn", v1, v2, 0.05), arms=(), state="stopped"), event("a", T0)
        )
    assert current_arms(sessions.kw["bind"], "churn") == LiveArms(1, 1, ())


def test_a_rollout_tick_is_claimed_once(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    v1, v2, _ = versions(sessions, tmp_path)
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        saved = repo.save(canary("churn", v1, v2, 0.05), event("a", T0))
        assert saved.id is not None
        assert repo.tick_count(saved.id) == 0
        assert repo.claim_tick(saved.id, "2026-01-01T00:01", T0 + MINUTE) is True
        assert repo.claim_tick(saved.id, "2026-01-01T00:01", T0 + MINUTE) is False
        assert repo.claim_tick(saved.id, "2026-01-01T00:02", T0 + 2 * MINUTE) is True
        repo.set_tick_kind(saved.id, "2026-01-01T00:01", "step")
        assert repo.tick_count(saved.id) == 2
    with transaction(sessions) as session:
        repo = DeploymentRepository(session)
        assert repo.claim_tick(saved.id, "2026-01-01T00:02", T0 + 3 * MINUTE) is False
        assert repo.tick_count(saved.id) == 2


# ---------------------------------------------------------------------------- sweeps


def test_period_of_counts_whole_intervals_since_the_epoch() -> None:
    # 2026-01-01T00:00:00Z is 20454 days after the epoch: 1_767_225_600 s.
    assert period_of(T0, 5) == 353_445_120
    assert period_of(T0 + timedelta(seconds=10), 5) == 353_445_122
    assert period_of(T0 + timedelta(seconds=9.999), 5) == 353_445_121
    assert period_of(T0 + timedelta(minutes=59), 3600) == 490_896
    assert period_of(T0, 0.5) == 3_534_451_200
    with pytest.raises(ValueError, match="positive"):
        period_of(T0, 0)
    with pytest.raises(ValueError, match="naive"):
        period_of(datetime(2026, 1, 1), 5)


def test_a_period_is_claimed_once_and_duplicates_are_counted(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        assert claim_period(session, "monitor", 100, T0) is True
        assert claim_period(session, "monitor", 100, T0 + MINUTE) is False
        assert claim_period(session, "retention", 100, T0) is True  # another sweep
    with transaction(sessions) as session:
        assert claim_period(session, "monitor", 100, T0 + MINUTE) is False
        assert claim_period(session, "monitor", 101, T0 + MINUTE) is True
    with transaction(sessions) as session:
        assert claims(session, "monitor") == [
            PeriodClaim("monitor", 100, T0, 2),
            PeriodClaim("monitor", 101, T0 + MINUTE, 0),
        ]
        assert claims(session, "retention") == [PeriodClaim("retention", 100, T0, 0)]
        assert claims(session, "nothing") == []


def test_racing_claims_of_one_period_one_wins(sessions: sessionmaker[Session]) -> None:
    def claim(i: int) -> str:
        with transaction(sessions) as session:
            won = claim_period(session, "monitor", 7, T0 + i * MINUTE)
            time.sleep(0.2)  # hold the claim, so the others wait on its key
        return "won" if won else "refused"

    assert race(6, claim) == ["refused"] * 5 + ["won"]
    with transaction(sessions) as session:
        (only,) = claims(session, "monitor")
        assert (only.period, only.duplicates) == (7, 5)


def test_the_check_interval_survives_saves(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    v1, v2, _ = versions(sessions, tmp_path)
    with transaction(sessions) as session:
        repository = DeploymentRepository(session)
        assert not repository.set_check_interval("churn", 600.0)  # no deployment yet
        saved = repository.save(canary("churn", v1, v2, 0.05), event("a", T0))
        assert repository.set_check_interval("churn", 600.0)
    with transaction(sessions) as session:
        repository = DeploymentRepository(session)
        current = repository.get("churn")
        assert current is not None and current.check_interval_s == 600.0
        repository.save(replace(current, step=1), event("b", T0 + MINUTE))  # a rollout tick
        after = repository.get("churn")
        assert after is not None and after.check_interval_s == 600.0 and after.step == 1
        assert saved.revision == 1 and after.revision == 2

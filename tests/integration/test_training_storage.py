"""Trial slots, admission slots and model versions on SQLite and PostgreSQL: the counts
that keep a study at exactly n trials and the cluster at N running training jobs."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from api_client.contract import JobStatus
from storage.admission import ADMISSION_STEP, AdmissionRepository
from storage.artifact_store import StoredObject
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository, next_patch
from storage.models import Dataset, Job, ModelVersion, utcnow
from storage.trial_claims import ClaimState, SlotOutcome, TrialClaimRepository


def add_job(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    status: JobStatus = JobStatus.RUNNING,
    step: str | None = None,
    created_offset_s: float = 0,
) -> None:
    with transaction(sessions) as session:
        JobRepository(session).create(
            Job(
                id=job_id,
                type="train",
                params={},
                status=status.value,
                step=step,
                attempts=0,
                cancel_requested=False,
                created_at=utcnow() + timedelta(seconds=created_offset_s),
            )
        )


def claim(sessions: sessionmaker[Session], job: str, n: int, lease_s: float = 60, now=None):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return TrialClaimRepository(session).claim(job, "r", n, lease_s, now=now)


def end(sessions: sessionmaker[Session], claim_id: int, state: ClaimState) -> bool:
    with transaction(sessions) as session:
        return TrialClaimRepository(session).end(claim_id, state, trial_number=1)


def test_claims_stop_at_n_and_failed_slots_are_claimed_again(
    sessions: sessionmaker[Session],
) -> None:
    add_job(sessions, "j")
    first, second = claim(sessions, "j", 2), claim(sessions, "j", 2)
    assert first.outcome is second.outcome is SlotOutcome.CLAIMED
    assert claim(sessions, "j", 2).outcome is SlotOutcome.FULL  # both slots taken
    assert end(sessions, first.claim_id, ClaimState.FAILED)
    again = claim(sessions, "j", 2)  # the failed trial's slot is free again
    assert again.outcome is SlotOutcome.CLAIMED
    assert end(sessions, second.claim_id, ClaimState.DONE)
    assert end(sessions, again.claim_id, ClaimState.DONE)
    assert not end(sessions, again.claim_id, ClaimState.FAILED)  # ended once
    finished = claim(sessions, "j", 2)
    assert finished.outcome is SlotOutcome.FINISHED
    assert finished.counts == {"open": 0, "done": 2, "failed": 1, "lost": 0}


def test_a_claim_not_renewed_is_lost_and_its_trial_cannot_count(
    sessions: sessionmaker[Session],
) -> None:
    add_job(sessions, "j")
    dead = claim(sessions, "j", 1, lease_s=5)
    assert claim(sessions, "j", 1).outcome is SlotOutcome.FULL
    later = utcnow() + timedelta(seconds=10)
    replacement = claim(sessions, "j", 1, now=later)
    assert replacement.outcome is SlotOutcome.CLAIMED
    assert replacement.counts["lost"] == 1
    with transaction(sessions) as session:
        claims = TrialClaimRepository(session)
        assert not claims.renew(dead.claim_id, 60)  # the dead runner's trial fails at its end
        assert claims.renew(replacement.claim_id, 60)
    assert not end(sessions, dead.claim_id, ClaimState.DONE)


def test_simultaneous_claims_never_exceed_n(sessions: sessionmaker[Session]) -> None:
    add_job(sessions, "race")
    outcomes: list[SlotOutcome] = []
    barrier = threading.Barrier(6)

    def grab() -> None:
        barrier.wait()
        for _ in range(3):
            outcomes.append(claim(sessions, "race", 5).outcome)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(SlotOutcome.CLAIMED) == 5
    assert outcomes.count(SlotOutcome.FULL) == 13


def test_admission_grants_free_slots_oldest_first(sessions: sessionmaker[Session]) -> None:
    for i in range(4):
        add_job(
            sessions,
            f"w{i}",
            status=JobStatus.WAITING,
            step=ADMISSION_STEP,
            created_offset_s=-100 + i,
        )
    with transaction(sessions) as session:
        admission = AdmissionRepository(session).admit(limit=2, lease_s=60)
        assert admission.admitted == ["w0", "w1"]
        assert (admission.running, admission.waiting) == (2, 2)
        job = JobRepository(session).require("w0")
        assert (job.status, job.step) == ("QUEUED", None)
        repo = AdmissionRepository(session)
        assert [repo.position(JobRepository(session).require(f"w{i}")) for i in range(4)] == [
            None,
            None,
            1,
            2,
        ]
    with transaction(sessions) as session:  # nothing free: nothing granted
        assert AdmissionRepository(session).admit(limit=2, lease_s=60).admitted == []
    with transaction(sessions) as session:  # w0 ended: its slot is freed with it
        JobRepository(session).finish("w0", JobStatus.SUCCEEDED)
        assert sorted(AdmissionRepository(session).held()) == ["w1"]
    with transaction(sessions) as session:  # and goes to w2
        assert AdmissionRepository(session).admit(limit=2, lease_s=60).admitted == ["w2"]
    later = utcnow() + timedelta(seconds=120)  # w1 and w2 crashed: their leases expire
    with transaction(sessions) as session:
        admission = AdmissionRepository(session).admit(limit=2, lease_s=60, now=later)
        assert admission.admitted == ["w3"]
        assert sorted(AdmissionRepository(session).held()) == ["w3"]


def test_a_renewed_lease_survives_and_a_lost_one_is_taken_back(
    sessions: sessionmaker[Session],
) -> None:
    add_job(sessions, "a", status=JobStatus.WAITING, step=ADMISSION_STEP)
    with transaction(sessions) as session:
        AdmissionRepository(session).admit(limit=1, lease_s=60)
    with transaction(sessions) as session:
        repo = AdmissionRepository(session)
        assert repo.holds("a") and repo.renew("a", 60)
        repo.release("a")
        assert not repo.has_lease("a")
        assert not repo.renew("a", 60)  # it had none: a running job takes one back
        assert repo.holds("a")


def _version(job_id: str, dataset_id: int, sha: str) -> ModelVersion:
    return ModelVersion(
        model_name="churn",
        version="",
        model_type="churn",
        family="hist_gradient_boosting",
        job_id=job_id,
        dataset_id=dataset_id,
        dataset_sha256=sha,
        study_name=job_id,
        artifact_sha256=sha,
        reference_sha256=sha,
    )


def test_versions_are_numbered_and_registered_once_per_job(
    sessions: sessionmaker[Session],
) -> None:
    sha = "a" * 64
    add_job(sessions, "t1")
    add_job(sessions, "t2")
    with transaction(sessions) as session:
        ArtifactRepository(session).record(StoredObject(sha256=sha, size_bytes=1, uri="file:///x"))
        dataset, _ = DatasetRepository(session).register(
            Dataset(name="d", stored_sha256=sha, rows=1, columns=1, schema=[])
        )
        dataset_id = dataset.id
    with transaction(sessions) as session:
        first, created = ModelVersionRepository(session).register(_version("t1", dataset_id, sha))
        assert created and first.version == "1.0.0"
    with transaction(sessions) as session:
        again, created = ModelVersionRepository(session).register(_version("t1", dataset_id, sha))
        assert not created and again.version == "1.0.0"  # a redelivered finalize
        second, created = ModelVersionRepository(session).register(_version("t2", dataset_id, sha))
        assert created and second.version == "1.0.1"
        assert [v.version for v in ModelVersionRepository(session).versions("churn")] == [
            "1.0.0",
            "1.0.1",
        ]
        assert ArtifactRepository(session).refcount(sha) >= 2
    assert next_patch("1.2.9") == "1.2.10"


INPUTS = [{"name": "age", "dtype": "int64"}, {"name": "tenure", "dtype": "float64"}]


def _retrain(
    job_id: str,
    dataset_id: int,
    sha: str,
    *,
    family: str = "random_forest",
    space: str = "space-1",
    inputs: list[dict[str, str]] = INPUTS,
) -> ModelVersion:
    version = _version(job_id, dataset_id, sha)
    version.family = family
    version.input_schema = inputs
    version.training = {"search_space_sha256": space, "best_trial": 3}
    return version


def test_registration_assigns_semantic_versions_and_records_the_bump(
    sessions: sessionmaker[Session],
) -> None:
    sha = "b" * 64
    retrains = [
        ("r1", {}, "1.0.0", "first", "first version of churn"),
        ("r2", {}, "1.0.1", "patch", "patch: same inputs and family"),
        (
            "r3",
            {"family": "hist_gradient_boosting"},
            "1.1.0",
            "minor",
            "minor: family random_forest -> hist_gradient_boosting",
        ),
        (
            "r4",
            {"family": "hist_gradient_boosting", "space": "space-2"},
            "1.2.0",
            "minor",
            "minor: search space changed",
        ),
        (
            "r5",
            {
                "family": "hist_gradient_boosting",
                "space": "space-2",
                "inputs": [*INPUTS, {"name": "recency_days", "dtype": "int64"}],
            },
            "2.0.0",
            "major",
            "major: inputs changed (added recency_days)",
        ),
    ]
    with transaction(sessions) as session:
        ArtifactRepository(session).record(StoredObject(sha256=sha, size_bytes=1, uri="file:///x"))
        dataset, _ = DatasetRepository(session).register(
            Dataset(name="d", stored_sha256=sha, rows=1, columns=1, schema=[])
        )
        dataset_id = dataset.id
    for job_id, *_ in retrains:
        add_job(sessions, job_id)
    previous = None
    for job_id, changes, number, part, reason in retrains:
        with transaction(sessions) as session:
            registered, created = ModelVersionRepository(session).register(
                _retrain(job_id, dataset_id, sha, **changes)  # type: ignore[arg-type]
            )
            assert created and registered.version == number
        with transaction(sessions) as session:  # read back: the bump is in the row
            row = ModelVersionRepository(session).find("churn", number)
            assert row is not None and row.job_id == job_id
            assert row.training["best_trial"] == 3  # the caller's training is kept
            assert row.training["semver"] == {"part": part, "reason": reason, "previous": previous}
        previous = number
    with transaction(sessions) as session:
        repo = ModelVersionRepository(session)
        again, created = repo.register(_retrain("r3", dataset_id, sha, family="logistic"))
        assert not created and again.version == "1.1.0"  # a redelivered finalize: same row
        assert again.id == repo.require(again.id).id and again.family == "hist_gradient_boosting"
        assert [v.version for v in repo.versions("churn")] == [r[2] for r in retrains]
        assert repo.latest("churn").version == "2.0.0"  # type: ignore[union-attr]


def test_simultaneous_registrations_get_distinct_versions_and_bumps(
    sessions: sessionmaker[Session],
) -> None:
    sha = "c" * 64
    with transaction(sessions) as session:
        ArtifactRepository(session).record(StoredObject(sha256=sha, size_bytes=1, uri="file:///x"))
        dataset, _ = DatasetRepository(session).register(
            Dataset(name="d", stored_sha256=sha, rows=1, columns=1, schema=[])
        )
        dataset_id = dataset.id
    jobs = [f"race{i}" for i in range(4)]
    for job_id in jobs:
        add_job(sessions, job_id)
    barrier = threading.Barrier(len(jobs))

    def register(job_id: str) -> None:
        barrier.wait()
        with transaction(sessions) as session:
            ModelVersionRepository(session).register(_retrain(job_id, dataset_id, sha))

    threads = [threading.Thread(target=register, args=(job_id,)) for job_id in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with transaction(sessions) as session:
        rows = ModelVersionRepository(session).versions("churn")
        assert [row.version for row in rows] == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]
        assert sorted(row.job_id for row in rows) == jobs
        # Each row's record names the version it was actually compared with.
        assert [row.training["semver"]["previous"] for row in rows] == [
            None,
            "1.0.0",
            "1.0.1",
            "1.0.2",
        ]

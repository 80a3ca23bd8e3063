"""Rollouts through real workers and a real beat on Redis + PostgreSQL: immediate deploys
and rollback, blue-green, a canary of a degraded model rolled back by its guardrail, an
A/B test decided on beat ticks, a shadow with its report, racing deploys, bad input, and
two beats that never double-fire.

The model is a small churn model on a 1,000-customer slice of the bundled CDNOW log:
versions 1.0.0 and 1.0.1 (seeds 0 and 1) and a degraded one trained on flipped labels.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api_client import CipmlError, Client, InvalidRequest, TaskName
from storage.artifact_store import ArtifactStore
from storage.db import transaction
from storage.deployments import ArmRecord, DeploymentRecord, DeploymentRepository, EventRecord
from storage.models import RolloutTick, SweepPeriod, utcnow
from tests.acceptance.churn import churn_config, churn_features, dataset_table, records
from tests.acceptance.helpers import eventually
from tests.support.beat import BeatProcess

pytestmark = pytest.mark.slow

CUSTOMERS = 1000
TICK_S = "1"  # beat's rollout interval in these tests


@pytest.fixture(scope="module")
def features(client: Client, data_root: Path) -> int:
    return churn_features(client, data_root, slice(-CUSTOMERS, None), "rollouts")


@pytest.fixture(scope="module")
def table(
    features: int, store: ArtifactStore, service_sessions: sessionmaker[Session]
) -> pd.DataFrame:
    return dataset_table(features, store, service_sessions)


@pytest.fixture(scope="module")
def model(client: Client, features: int, table: pd.DataFrame, data_root: Path) -> str:
    """1.0.0 and 1.0.1 (seeds 0 and 1), then 1.0.2: the same inputs with the labels
    flipped, a model wrong wherever 1.0.0 is right (so a few hundred outcomes decide)."""
    name = f"churn-roll-{uuid.uuid4().hex[:6]}"
    for seed in (0, 1):
        client.submit_train(features, churn_config(name, seed)).wait(600, progress=False)
    flipped = table.assign(label=1 - table["label"])
    path = data_root / f"{name}-flipped.parquet"
    flipped.to_parquet(path, index=False)
    dataset = client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(120)
    client.submit_train(dataset["dataset_id"], churn_config(name, 2)).wait(600, progress=False)
    assert [v["version"] for v in client.versions(name)] == ["1.0.0", "1.0.1", "1.0.2"]
    return name


@pytest.fixture
def beat(service_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """One beat ticking every second while a test runs."""
    home = tmp_path / "beat-home"
    process = BeatProcess(
        {**service_env, "CIPML_ROLLOUT_INTERVAL_S": TICK_S}, home, tmp_path / "beat.log"
    )
    process.start()
    yield
    process.stop()


def serve(client: Client, name: str, table: pd.DataFrame) -> list[dict[str, Any]]:
    """Every customer scored once, in batches, then their true churn recorded by id."""
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(table), 250):
        answer = client.predict(name, records(table.iloc[start : start + 250]))
        assert not answer["errors"]
        predictions += answer["predictions"]
    truth = dict(zip(table["customer_id"].astype(str), table["label"], strict=True))
    outcomes = [
        {"prediction_id": p["prediction_id"], "value": float(truth[p["routing_key"]])}
        for p in predictions
    ]
    client.record_outcomes(name, outcomes)
    return predictions


def kinds(client: Client, name: str) -> list[str]:
    return [event["kind"] for event in client.deployment(name)["events"]]


def reset(client: Client, name: str, version: str) -> None:
    """Back to one champion, nothing in progress."""
    try:
        in_progress = client.deployment(name)["in_progress"]
    except CipmlError as exc:  # no deployment yet
        assert exc.code == "deployment_not_found"
        in_progress = False
    if in_progress:
        client.rollback(name, reason="test reset")
    client.deploy(name, version, "immediate", reason="test reset")


def test_bad_input_is_refused_with_its_code(
    client: Client, model: str, store: ArtifactStore
) -> None:
    with pytest.raises(InvalidRequest, match="sum to 1"):
        client.deploy(model, "1.0.1", "ab_test", {"traffic": {"champion": 0.6, "challenger": 0.6}})
    with pytest.raises(InvalidRequest, match="strictly increasing"):
        client.deploy(model, "1.0.1", "canary", {"steps": [0.5, 0.25, 1.0]})
    with pytest.raises(InvalidRequest, match="alpha"):
        client.deploy(model, "1.0.1", "ab_test", {"alpha": 0.5})
    with pytest.raises(InvalidRequest, match="min_samples_per_arm"):
        client.deploy(model, "1.0.1", "ab_test", {"min_samples_per_arm": 99})
    # The worker checks again what a client that skips validation sends.
    raw = {"model_name": model, "version": "1.0.1", "strategy": "canary"}
    raw["config"] = {"steps": [0.5, 0.25]}
    reply = client._app.send_task(TaskName.DEPLOY.value, args=[raw], queue="control").get(30)
    assert reply["ok"] is False and reply["error"]["code"] == "invalid_message"
    assert "strictly increasing" in reply["error"]["message"]
    # A version whose file fails its sha256 never takes traffic (1.0.1 is loaded nowhere
    # yet, so the workers read the file).
    sha = next(v for v in client.versions(model) if v["version"] == "1.0.1")["artifact_sha256"]
    path = Path(store.local_path(sha))
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    try:
        with pytest.raises(CipmlError) as corrupt:
            client.deploy(model, "1.0.1", "canary")
    finally:
        path.write_bytes(original)
    assert corrupt.value.code == "artifact_corrupt"
    with pytest.raises(CipmlError) as missing:
        client.deploy(model, "9.9.9")
    assert missing.value.code == "version_not_found"
    with pytest.raises(CipmlError) as unknown:
        client.deploy("no-such-model", "1.0.0")
    assert unknown.value.code == "model_not_found"
    with pytest.raises(CipmlError) as nothing:
        client.rollback(f"{model}-none")
    assert nothing.value.code == "model_not_found"


def test_immediate_deploy_rollback_and_racing_deploys(
    client: Client, model: str, table: pd.DataFrame
) -> None:
    first = client.deploy(model, "1.0.0", "immediate", reason="first release", actor="alice")
    assert first["changed"] and first["state"] == "live"
    assert first["arms"] == [{"role": "champion", "version": "1.0.0", "weight": 1.0}]
    with pytest.raises(CipmlError) as nothing:
        client.rollback(model)
    assert nothing.value.code == "nothing_to_roll_back"
    again = client.deploy(model, "1.0.0", "immediate")
    assert not again["changed"]  # a repeated deploy changes nothing
    second = client.deploy(model, "1.0.1", "immediate", reason="retrained")
    assert second["previous_version"] == "1.0.0" and second["stable_version"] == "1.0.1"
    assert {p["version"] for p in client.predict(model, records(table.head(5)))["predictions"]} == {
        "1.0.1"
    }
    back = client.rollback(model, reason="bad numbers", actor="bob")
    assert back["stable_version"] == "1.0.0" and back["state"] == "rolled_back"
    assert client.alias_history(model, "champion")["events"][-1]["to_version"] == "1.0.0"
    event = back["events"][-1]
    assert (event["kind"], event["actor"], event["reason"]) == ("rolled_back", "bob", "bad numbers")

    # Two canaries racing on one model: one wins, the other gets a conflict.
    outcomes: list[Any] = []
    barrier = threading.Barrier(2)

    def race(version: str) -> None:
        barrier.wait()
        try:
            outcomes.append(client.deploy(model, version, "canary", {"min_step_duration_s": 0}))
        except CipmlError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=race, args=(v,)) for v in ("1.0.1", "1.0.2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes))[0] == "deployment_conflict"
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    reset(client, model, "1.0.0")


def test_blue_green_checks_the_idle_slot_then_switches(client: Client, model: str) -> None:
    reset(client, model, "1.0.0")
    started = client.deploy(model, "1.0.1", "blue_green", {"smoke_rows": 100})
    assert started["state"] == "verifying"
    assert started["arms"] == [{"role": "champion", "version": "1.0.0", "weight": 1.0}]
    # The deploy itself asks for the check: no beat needed.
    live = eventually(
        lambda: (view := client.deployment(model))["state"] == "live" and view,
        timeout=60,
        what="the blue-green switch",
    )
    assert live["arms"] == [{"role": "champion", "version": "1.0.1", "weight": 1.0}]
    switched = live["events"][-1]
    assert switched["kind"] == "switched" and switched["details"]["rows"] == 100
    assert client.rollback(model)["stable_version"] == "1.0.0"


def test_canary_of_a_degraded_model_rolls_back_on_its_guardrail(
    client: Client, model: str, table: pd.DataFrame, beat: None
) -> None:
    reset(client, model, "1.0.0")
    config = {
        "steps": [0.5, 1.0],
        "min_samples_per_step": 100_000,  # never enough: only a guardrail can end it
        "min_step_duration_s": 0,
    }
    client.deploy(model, "1.0.2", "canary", config, reason="flipped-label model")
    served = serve(client, model, table)
    assert {p["arm"] for p in served} == {"champion", "canary"}
    ended = eventually(
        lambda: (view := client.deployment(model, events=500))["state"] == "rolled_back" and view,
        timeout=60,
        what="the canary's automatic rollback",
    )
    assert ended["arms"] == [{"role": "champion", "version": "1.0.0", "weight": 1.0}]
    decision = ended["events"][-1]
    assert decision["actor"] == "scheduler" and decision["kind"] == "rolled_back"
    # Its scores mirror the stable ones (score PSI) and its labels are mostly wrong (the
    # metric, once outcomes join): whichever a tick sees first rolls it back.
    breached = decision["details"]["breached"]
    assert breached and set(breached) <= {"score_psi", "metric"}
    checks = {c["name"]: c for c in decision["details"]["checks"]}
    assert all(checks[name]["status"] == "breached" for name in breached)
    if "score_psi" in breached:
        assert checks["score_psi"]["observed"]["psi"] > 0.25
    if "metric" in breached:
        observed = checks["metric"]["observed"]
        assert observed["canary_mean"] < observed["stable_mean"] - 0.01
        assert observed["ci_high"] < -0.01
    # Waiting ticks came first, each stored with its numbers; never promoted.
    assert "promoted" not in [e["kind"] for e in ended["events"]]


def test_ab_test_promotes_the_better_version_on_beat_ticks(
    client: Client, model: str, table: pd.DataFrame, beat: None
) -> None:
    reset(client, model, "1.0.2")  # the flipped model serves; 1.0.0 challenges it
    config = {"metric": "accuracy", "min_samples_per_arm": 100, "min_effect": 0.01}
    client.deploy(model, "1.0.0", "ab_test", config)
    served = serve(client, model, table)
    assert {p["arm"] for p in served} == {"champion", "challenger"}
    ended = eventually(
        lambda: (view := client.deployment(model, events=500))["state"] != "testing" and view,
        timeout=60,
        what="the A/B decision",
    )
    assert ended["state"] == "live" and ended["stable_version"] == "1.0.0"
    decision = ended["events"][-1]
    assert decision["kind"] == "promoted"
    numbers = decision["details"]
    assert numbers["effect"] >= 0.01 and numbers["p_value"] <= 0.05
    assert numbers["ci_low"] > 0 and numbers["n_control"] >= 100
    assert client.predict(model, records(table.head(3)))["predictions"][0]["version"] == "1.0.0"


def test_shadow_scores_every_row_and_only_logs_it(
    client: Client, model: str, table: pd.DataFrame
) -> None:
    reset(client, model, "1.0.0")
    client.deploy(model, "1.0.1", "shadow")
    served = serve(client, model, table)
    assert {(p["arm"], p["version"]) for p in served} == {("champion", "1.0.0")}
    report = eventually(
        lambda: (r := client.shadow_report(model))["labelled_pairs"] == len(table) and r,
        timeout=30,
        what="the shadow's rows and outcomes in the log",
    )
    assert report["pairs"] == len(table) and report["shadow_errors"] == 0
    assert 0.8 <= report["agreement_rate"] <= 1.0  # two seeds of one model mostly agree
    assert report["score_correlation"] > 0.9
    low, high = report["metric_difference"]["ci95"]
    assert low <= report["metric_difference"]["shadow_minus_served"] <= high
    client.rollback(model)
    assert client.deployment(model)["arms"] == [
        {"role": "champion", "version": "1.0.0", "weight": 1.0}
    ]


def test_two_beats_never_double_fire(
    client: Client,
    model: str,
    service_env: dict[str, str],
    service_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """Three running rollouts stored directly (the sweep machinery is under test, not the
    strategies), two beats for five ticks: exactly one evaluation per rollout per tick."""
    version_id = client.versions(model)[0]["model_version_id"]
    names = [f"dup-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    now = utcnow()
    ids = []
    with transaction(service_sessions) as session:
        for name in names:
            record = DeploymentRecord(
                model_name=name,
                strategy="canary",
                state="canary",
                config={"min_samples_per_step": 10**9},
                arms=(
                    ArmRecord("canary", version_id, 0.05),
                    ArmRecord("champion", version_id, 0.95),
                ),
                stable_version_id=version_id,
                candidate_version_id=version_id,
                previous_version_id=None,
                step=0,
                step_started_at=now,
                started_at=now,
                memory={},
                rollout=1,
            )
            event = EventRecord(
                at=now, actor="test", kind="canary_started", reason="test", details={}
            )
            saved = DeploymentRepository(session).save(record, event)
            ids.append(saved.id)
    env = {**service_env, "CIPML_ROLLOUT_INTERVAL_S": TICK_S}
    beats = [BeatProcess(env, tmp_path / f"beat{i}", tmp_path / f"beat{i}.log") for i in (1, 2)]

    def periods() -> list[SweepPeriod]:
        with transaction(service_sessions) as session:
            return list(
                session.scalars(
                    select(SweepPeriod).where(
                        SweepPeriod.sweep == "rollouts", SweepPeriod.claimed_at >= since
                    )
                )
            )

    try:
        for process in beats:
            process.start()
        since = utcnow()  # both beats are up: count the ticks from here
        eventually(lambda: len(periods()) >= 5, timeout=30, what="five rollout ticks")
    finally:
        for process in beats:
            process.stop()
    claimed = periods()
    ticks = {f"rollouts:{p.period}" for p in claimed}

    def evaluations() -> dict[int, int]:
        """Evaluations per rollout of the ticks counted."""
        with transaction(service_sessions) as session:
            rows = session.execute(
                select(RolloutTick.deployment_id, func.count())
                .where(RolloutTick.deployment_id.in_(ids), RolloutTick.tick.in_(ticks))
                .group_by(RolloutTick.deployment_id)
            ).all()
        return {int(deployment_id): int(count) for deployment_id, count in rows}

    expected = {deployment_id: len(claimed) for deployment_id in ids}
    eventually(lambda: evaluations() == expected, timeout=30, what="one evaluation per tick")
    assert sum(evaluations().values()) == 3 * len(claimed)  # 5 ticks: 15 evaluations
    # Both beats kept firing, and sweeps of claimed periods were turned away.
    assert all(b.log().count("Sending due task sweep-rollouts") >= 3 for b in beats)
    assert sum(p.duplicates for p in claimed) >= 1
    with transaction(service_sessions) as session:  # leave nothing running for others
        repository = DeploymentRepository(session)
        for name in names:
            record = repository.get(name)
            assert record is not None
            ended = EventRecord(
                at=utcnow(), actor="test", kind="rolled_back", reason="cleanup", details={}
            )
            repository.save(replace(record, state="rolled_back"), ended)

"""The retraining loop through real workers and real beats on Redis + PostgreSQL.

Bank marketing (UCI; data/README.md) replayed as live traffic: a lead-scoring model
trained on 2008H2 serves 2009 with its outcomes; two beats sweep; the check finds the
drift, alerts are raised once and delivered to a webhook that first fails, a retrain is
enqueued as the check's child job, trains on the labelled traffic and is judged against
the champion. Also: 100 simultaneous triggers over 20 models under admission control, a
worker killed mid-retrain, and a sweep whose database connection is killed."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import signal
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client
from api_client.contract import TaskName
from storage.db import transaction
from storage.jobs import JobRepository
from storage.model_versions import ModelVersionRepository
from storage.models import (
    Alert,
    Deployment,
    Job,
    ModelVersion,
    MonitoringCheck,
    Retrain,
    RetrainPolicy,
    SweepPeriod,
    TrialClaim,
    WebhookDelivery,
)
from storage.registry import AliasRepository
from tests.acceptance.helpers import (
    admitted_order,
    eventually,
    kill_sessions_waiting_on,
    running_peak,
)
from tests.conftest import WEBHOOK_SECRET
from tests.support.beat import BeatProcess
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.workers import WorkerProcess
from workers.demo_retraining import bank_periods, lead_training_config, replay

pytestmark = pytest.mark.slow

ENDED = ("promoted", "rollout", "rejected", "failed")


@dataclass(frozen=True)
class Bank:
    periods: dict[str, pd.DataFrame]
    dataset_id: int
    dataset_name: str


@pytest.fixture(scope="module")
def bank(client: Client, data_root: Path) -> Bank:
    periods = bank_periods()
    name = f"bank_2008h2_{uuid.uuid4().hex[:6]}"
    periods["2008H2"].to_parquet(data_root / f"{name}.parquet", index=False)
    ingested = client.submit("ingest_dataset", {"uri": f"{name}.parquet", "name": name}).wait(300)
    return Bank(periods, int(ingested["dataset_id"]), name)


def deployed_model(client: Client, bank: Bank, prefix: str, n_trials: int = 2) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    config = lead_training_config(name, n_trials=n_trials)
    config["optimization"]["families"] = ["logistic_regression"]
    client.submit_train(bank.dataset_id, config).wait(600, progress=False)
    client.deploy(name, "1.0.0", reason="served")
    return name


def retrains_of(sessions: sessionmaker[Session], model: str) -> list[Retrain]:
    with transaction(sessions) as session:
        return list(
            session.scalars(select(Retrain).where(Retrain.model_name == model).order_by(Retrain.id))
        )


def quiet_other_deployments(
    client: Client, sessions: sessionmaker[Session], model: str
) -> list[str]:
    """Other test modules' deployed models are checked once a day while beats run here."""
    with transaction(sessions) as session:
        others = [
            d.model_name
            for d in session.scalars(select(Deployment).where(Deployment.model_name != model))
        ]
    for name in others:
        client.set_check_interval(name, 86400)
    return others


def kill_waiting_sweep_claim(pg_url: str) -> None:
    """Hold the sweep-claims table, then kill the database session of the first sweep that
    waits on it: what a PostgreSQL restart does to a sweep mid-claim."""
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin) as blocker:
        blocker.execute("LOCK TABLE sweep_periods IN SHARE MODE")
        eventually(
            lambda: kill_sessions_waiting_on(pg_url, "sweep_periods"),
            timeout=60,
            interval=0.05,
            what="a sweep waiting on its claim",
        )
        blocker.rollback()


def test_bank_marketing_replay_alerts_retrains_and_decides_through_two_beats(
    client: Client,
    worker: WorkerProcess,
    bank: Bank,
    webhooks: WebhookReceiver,
    service_env: dict[str, str],
    service_sessions: sessionmaker[Session],
    pg_url: str,
    tmp_path: Path,
) -> None:
    model = deployed_model(client, bank, "leads")
    others = quiet_other_deployments(client, service_sessions, model)
    # The first delivery is answered 500, its retry stalls past the 1 s timeout: both are
    # retried with backoff, and no check waits for them.
    webhooks.plan(model, "feature_drift", 500, 3.0)
    client.set_retrain_policy(
        model, {"window": {"days": 30, "evaluation_share": 0.3}, "n_trials": 2}, actor="test"
    )
    served = replay(client, model, bank.periods["2009"])
    log_before = len(worker.log())
    assert served == len(bank.periods["2009"])
    env = {
        **service_env,
        "CIPML_DRIFT_CHECK_INTERVAL": "6",
        "CIPML_RETRAIN_INTERVAL_S": "5",
        "CIPML_ROLLOUT_INTERVAL_S": "3600",
    }
    beats = [BeatProcess(env, tmp_path / f"b{i}", tmp_path / f"b{i}.log") for i in (1, 2)]
    try:
        for beat in beats:
            beat.start()
        kill_waiting_sweep_claim(pg_url)

        def decided() -> Retrain | None:
            return next(
                (r for r in retrains_of(service_sessions, model) if r.status in ENDED), None
            )

        retrain = eventually(decided, timeout=600, interval=1, what="a decided retrain")
        time.sleep(7)  # another period of both beats: nothing may double
    finally:
        for beat in beats:
            beat.stop()
        for name in others:
            client.set_check_interval(name, None)

    # Sweeps: the one whose connection was killed retried its period; one claim per period.
    assert "retrying" in worker.log()[log_before:]
    with transaction(service_sessions) as session:
        claims = session.scalars(select(SweepPeriod).where(SweepPeriod.sweep == "monitoring")).all()
        assert len({c.period for c in claims}) == len(claims)
        checks = session.scalars(
            select(Job).where(
                Job.type == "check_model", Job.idempotency_key.like(f"check_model:{model}:%")
            )
        ).all()
        keys = [job.idempotency_key for job in checks]
        assert len(keys) == len(set(keys)) >= 2  # one check job per model and period
        alerts = session.scalars(select(Alert).where(Alert.model_name == model)).all()
        first_check = session.scalar(
            select(MonitoringCheck)
            .where(MonitoringCheck.model_name == model)
            .order_by(MonitoringCheck.checked_at)
            .limit(1)
        )
        assert first_check is not None
        found = {k: first_check.result.get(k) for k in ("performance", "health", "window")}
        deliveries = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.alert_id.in_([a.id for a in alerts]))
        ).all()

    # Alerts: raised once each whatever the number of checks: the drift of important
    # features (pdays, poutcome, ...) and the fall in health. Without the call's duration
    # the 2008H2 model scores about 0.6 ROC AUC, and on 2009 it loses only a few points:
    # measured, but not a significant drop of more than 5 points.
    raised = Counter(a.kind for a in alerts if a.event == "raised")
    assert raised["feature_drift"] == 1 and raised["health"] == 1, (raised, found)
    assert max(raised.values()) == 1
    assert found["performance"]["status"] in ("ok", "drifted") and found["performance"]["n"] > 5000
    drift = next(a for a in alerts if a.kind == "feature_drift")
    assert drift.level == "MEDIUM" and drift.event == "raised"

    # Webhooks: every alert delivered once, the first after a 500, signed, deduplicable.
    assert {d.status for d in deliveries} == {"delivered"} and len(deliveries) == len(alerts)
    received = webhooks.of(model)
    first = next(
        r.headers["X-Cipml-Delivery"]
        for r in received
        if r.body["alert"]["kind"] == "feature_drift"
    )
    assert [r.answered for r in received if r.headers["X-Cipml-Delivery"] == first] == [
        500,
        None,
        200,
    ]
    late = next(d for d in deliveries if d.id == first)
    assert late.attempts == 3 and late.delivered_at is not None
    assert first_check.checked_at < late.delivered_at
    for post in received:
        body = post.raw
        signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert post.headers["X-Cipml-Signature"] == f"sha256={signature}"
        assert json.loads(body)["delivery_id"] == post.headers["X-Cipml-Delivery"]

    # Retrains: one opened (a child of the check that found the problem), the rest of the
    # triggers coalesced into it or skipped in the policy's cooldown.
    rows = retrains_of(service_sessions, model)
    opened = [r for r in rows if r.job_id is not None]
    assert len(opened) == 1 and opened[0].id == retrain.id
    assert {r.status for r in rows if r.id != retrain.id} <= {"coalesced", "skipped"}
    assert retrain.trigger in ("performance_drop", "feature_drift", "health")
    with transaction(service_sessions) as session:
        job = JobRepository(session).require(str(retrain.job_id))
        assert job.status == "SUCCEEDED" and job.parent_id == retrain.check_job_id
        versions = session.scalars(select(ModelVersion).where(ModelVersion.job_id == job.id)).all()
        assert len(versions) == 1 and versions[0].parent_id == retrain.from_version_id
        champion = AliasRepository(session).get(model, "champion")
    decision = retrain.decision
    assert decision["metric"] == "roc_auc" and decision["n"] >= 200
    assert decision["verdict"] in ("promote", "reject") and decision["message"]
    if retrain.status == "promoted":  # a significantly better challenger serves now
        assert champion is not None and champion.version_id == versions[0].id
    else:
        assert champion is not None and champion.version_id == retrain.from_version_id
    listed = client.retrains(model)
    assert listed["retrains"][-1]["id"] == retrain.id or any(
        r["id"] == retrain.id and r["job_status"] == "SUCCEEDED" for r in listed["retrains"]
    )
    shown = client.alerts(model)
    assert {a["kind"] for a in shown["alerts"]} >= {"health", "feature_drift"}
    assert all(d["status"] == "delivered" for a in shown["alerts"] for d in a["deliveries"])


def test_100_simultaneous_triggers_over_20_models_make_20_retrains_5_at_a_time(
    client: Client,
    bank: Bank,
    data_root: Path,
    service_env: dict[str, str],
    service_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    source = deployed_model(client, bank, "fleet-source", n_trials=1)
    fleet_data = f"fleet_{uuid.uuid4().hex[:6]}"
    bank.periods["2008H2"].head(600).to_parquet(data_root / f"{fleet_data}.parquet", index=False)
    client.submit("ingest_dataset", {"uri": f"{fleet_data}.parquet", "name": fleet_data}).wait(120)
    models = clone_champions(service_sessions, source, 20)
    for name in models:
        client.set_retrain_policy(
            name, {"window": {"dataset": fleet_data}, "n_trials": 1}, actor="test"
        )
    wide = WorkerProcess(  # capacity above the limit of 5 training jobs
        service_env, tmp_path / "wide.log", concurrency=6, queues="training,trials", name="wide"
    ).start()
    try:
        calls = [(name, i) for name in models for i in range(5)]
        random.Random(0).shuffle(calls)
        with ThreadPoolExecutor(max_workers=20) as pool:
            replies = list(
                pool.map(lambda c: client.retrain(c[0], key=f"burst-{c[1]}", reason="burst"), calls)
            )
        assert Counter(r["status"] for r in replies) == {"open": 20, "coalesced": 80}
        job_ids = [r["job_id"] for r in replies if r["status"] == "open"]
        jobs, peak = running_peak(service_sessions, job_ids, timeout=900)
        assert [j.status for j in jobs] == ["SUCCEEDED"] * 20, [
            (j.status, j.error_code, j.error_message) for j in jobs if j.status != "SUCCEEDED"
        ]
        assert peak == 5
    finally:
        wide.stop()
    with transaction(service_sessions) as session:
        created = [
            j.id
            for j in session.scalars(
                select(Job).where(Job.id.in_(job_ids)).order_by(Job.created_at, Job.id)
            )
        ]
        rows = session.scalars(select(Retrain).where(Retrain.model_name.in_(models))).all()
    assert admitted_order(service_sessions, job_ids) == created  # oldest first
    assert len(rows) == 100  # none lost: every trigger is a row
    by_model = Counter(r.model_name for r in rows if r.job_id is not None)
    assert by_model == dict.fromkeys(models, 1)
    opened = {r.model_name: r.id for r in rows if r.job_id is not None}
    assert all(r.coalesced_into == opened[r.model_name] for r in rows if r.job_id is None)
    eventually(
        lambda: all(r.status in ENDED for r in retrains_of_many(service_sessions, models)),
        timeout=120,
        what="every retrain decided",
    )


def retrains_of_many(sessions: sessionmaker[Session], models: list[str]) -> list[Retrain]:
    with transaction(sessions) as session:
        return list(
            session.scalars(
                select(Retrain).where(Retrain.model_name.in_(models), Retrain.job_id.isnot(None))
            )
        )


def clone_champions(sessions: sessionmaker[Session], source: str, count: int) -> list[str]:
    """``count`` models whose champion is a copy of ``source``'s (same artifact and config
    under another name): a fleet without training each one."""
    names = []
    with transaction(sessions) as session:
        original = ModelVersionRepository(session).versions(source)[0]
        for i in range(count):
            name = f"{source}-clone-{i:02d}"
            job_id = f"{name}-train"
            JobRepository(session).create(
                Job(id=job_id, type="train", params={}, status="SUCCEEDED", attempts=1)
            )
            training = {
                **original.training,
                "config": {**original.training["config"], "model_name": name},
            }
            columns = {
                c.key: getattr(original, c.key)
                for c in ModelVersion.__table__.columns
                if c.key not in ("id", "model_name", "version", "job_id", "training", "status")
            }
            version, _ = ModelVersionRepository(session).register(
                ModelVersion(
                    **columns, model_name=name, version="", job_id=job_id, training=training
                )
            )
            AliasRepository(session).set(name, "champion", version.id, actor="test", reason="fleet")
            names.append(name)
    return names


def test_a_worker_killed_mid_retrain_resumes_with_one_version(
    client: Client,
    bank: Bank,
    service_env: dict[str, str],
    service_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    model = deployed_model(client, bank, "leads-killed", n_trials=1)
    replay(client, model, bank.periods["2009"].head(3000))
    canary = {"steps": [0.1, 1.0], "min_samples_per_step": 100, "min_step_duration_s": 60}
    client.set_retrain_policy(
        model, {"decision": {"mode": "canary", "rollout_config": canary}}, actor="test"
    )
    runner = WorkerProcess(
        service_env, tmp_path / "runner.log", concurrency=1, queues="trials", name="victim"
    ).start()
    try:
        retrain = client.retrain(
            model,
            key="killed",
            window={"days": 1, "evaluation_share": 0.3},
        )
        assert retrain["status"] == "open"

        def running_trial() -> TrialClaim | None:
            with transaction(service_sessions) as session:
                return session.scalar(
                    select(TrialClaim).where(
                        TrialClaim.job_id == retrain["job_id"], TrialClaim.state == "open"
                    )
                )

        claim = eventually(running_trial, timeout=300, interval=0.02, what="a running trial")
        os.kill(int(claim.runner.split(":")[1]), signal.SIGKILL)
        done = eventually(
            lambda: next(
                (r for r in retrains_of(service_sessions, model) if r.status in ENDED), None
            ),
            timeout=600,
            interval=1,
            what="the retrain decided",
        )
    finally:
        runner.stop()
    with transaction(service_sessions) as session:
        versions = session.scalars(
            select(ModelVersion).where(ModelVersion.job_id == retrain["job_id"])
        ).all()
        job = JobRepository(session).require(retrain["job_id"])
    assert job.status == "SUCCEEDED" and len(versions) == 1
    assert done.version_id == versions[0].id and done.decision["n"] > 0
    # Trained on 2009, the challenger is far better on 2009's newest rows than the 2008H2
    # champion (+0.1 ROC AUC or so): the policy starts a canary of it, not a replacement.
    assert done.status == "rollout", done.decision
    deployment = client.deployment(model)
    assert deployment["strategy"] == "canary" and deployment["in_progress"]
    assert deployment["candidate_version"] == versions[0].version
    assert deployment["stable_version"] == "1.0.0"
    # The decision redelivered after its deploy but before it closed the retrain (a worker
    # killed in between): the canary already running is this version's, so it is not
    # deployed again and the retrain closes as a rollout once more.
    with transaction(service_sessions) as session:
        reopened = session.get(Retrain, done.id)
        assert reopened is not None
        reopened.status = "open"
    client._app.send_task(
        TaskName.DECIDE_RETRAIN.value, args=[{"job_id": retrain["job_id"]}], queue="monitoring"
    )
    again = eventually(
        lambda: next((r for r in retrains_of(service_sessions, model) if r.status in ENDED), None),
        timeout=60,
        what="the redelivered decision",
    )
    assert again.status == "rollout"
    assert client.deployment(model)["revision"] == deployment["revision"]
    client.rollback(model, reason="the test is over")  # no later beat steps this canary


def test_a_scheduled_retrain_runs_once_per_period_of_its_policy(
    client: Client, bank: Bank, service_sessions: sessionmaker[Session]
) -> None:
    model = deployed_model(client, bank, "leads-weekly", n_trials=1)
    client.set_retrain_policy(
        model,
        {"triggers": [], "schedule_s": 604800, "window": {"dataset": bank.dataset_name}},
        actor="test",
    )
    with transaction(service_sessions) as session:  # the policy was set two weeks ago
        policy = session.get(RetrainPolicy, model)
        assert policy is not None
        policy.updated_at = policy.updated_at - timedelta(days=14, hours=1)
    for _ in range(2):  # two sweeps (two periods of the sweep, one of the schedule)
        client._app.send_task(
            TaskName.SWEEP_RETRAINING.value, kwargs={"interval_s": 1.0}, queue="control"
        )
        time.sleep(1.1)
    scheduled = eventually(
        lambda: [r for r in retrains_of(service_sessions, model) if r.status in ENDED],
        timeout=300,
        interval=1,
        what="the scheduled retrain decided",
    )
    rows = retrains_of(service_sessions, model)
    assert len(rows) == 1 and rows[0].trigger == "schedule" and rows[0].job_id is not None
    assert rows[0].trigger_key.endswith(":2")  # the second week since the policy was set
    # Trained on the named dataset, judged on recent labelled traffic: there is none, so
    # the champion is kept and the decision says why.
    assert scheduled[0].status == "rejected"
    assert scheduled[0].decision["verdict"] == "insufficient_data"

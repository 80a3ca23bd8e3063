"""The laptop mode: no servers at all (folder broker, SQLite), real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from api_client import Client, JobStatus
from tests.acceptance.helpers import eventually
from tests.support.workers import CIPML, WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, WorkerProcess]]:
    home = tmp_path_factory.mktemp("laptop") / ".cipml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPML_")}
    env.update(
        {
            "CIPML_HOME": str(home),
            "CIPML_ALLOW_FAULT_INJECTION": "1",
            "CIPML_PROGRESS_INTERVAL_S": "0",
        }
    )
    refused = subprocess.run([CIPML, "worker"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "run `cipml db upgrade`" in refused.stderr
    subprocess.run([CIPML, "db", "upgrade"], env=env, check=True, capture_output=True)
    worker = WorkerProcess(env, home.parent / "worker.log", concurrency=2, name="laptop")
    worker.start()
    assert "single machine, at-most-once delivery, no revoke" in worker.log()
    with Client.embedded(home, control_timeout=30) as client:
        yield client, worker
    worker.stop()


def test_jobs_run_with_no_server(embedded: tuple[Client, WorkerProcess]) -> None:
    client, _ = embedded
    handle = client.submit("diagnostics.probe", {"seconds": 0.5, "steps": 2, "write_output": True})
    result = handle.wait(timeout=60, progress=False)
    assert result["steps"] == 2 and result["dataset_id"] >= 1
    info = client.job(handle.id)
    assert info.status == JobStatus.SUCCEEDED and info.attempts == 1
    assert handle.id in {job.id for job in client.jobs(limit=10)}
    fanout = client.submit("diagnostics.fanout", {"parts": 5})
    assert fanout.result(timeout=60) == {"parts": 5, "completed": 5}


def test_a_killed_pool_child_is_taken_over(embedded: tuple[Client, WorkerProcess]) -> None:
    # The folder broker requeues the message without a redelivered flag; the worker sees
    # the recorded process is gone and runs the job again.
    client, worker = embedded
    handle = client.submit("diagnostics.probe", {"seconds": 2, "steps": 4, "write_output": True})
    info = eventually(
        lambda: (i := handle.info()).progress and i.worker and i, what="first checkpoint"
    )
    assert info.worker is not None
    os.kill(int(info.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    result = handle.result(timeout=60)
    assert result["attempt"] == 2
    assert worker.alive()


def test_embedded_home_layout(embedded: tuple[Client, WorkerProcess]) -> None:
    _, worker = embedded
    home = Path(worker.env["CIPML_HOME"])
    assert (home / "cipml.sqlite").exists()
    assert (home / "broker" / "queue").is_dir()
    assert any((home / "artifacts" / "sha256").rglob("*"))


def test_training_runs_one_trial_at_a_time_on_sqlite(
    embedded: tuple[Client, WorkerProcess],
) -> None:
    """The same train pipeline as on Redis + PostgreSQL: the study goes to its own SQLite
    file, and parallelism is capped to 1 there."""
    client, worker = embedded
    home = Path(worker.env["CIPML_HOME"])
    rng = np.random.default_rng(1)
    signal_ = rng.normal(size=300)
    table = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(300)],
            "spend": signal_ + rng.normal(scale=0.5, size=300),
            "channel": rng.choice(["web", "store"], size=300),
            "label": (signal_ > 0).astype(int),
        }
    )
    (home / "data").mkdir(parents=True, exist_ok=True)
    table.to_csv(home / "data" / "leads.csv", index=False)
    dataset = client.submit("ingest_dataset", {"uri": "leads.csv", "name": "leads"}).wait(60)
    config = {
        "model_name": "leads",
        "model_type": "lead_scoring",
        "exclude": ["customer_id"],
        "optimization": {"n_trials": 4, "parallelism": 2, "families": ["logistic_regression"]},
        "validation": {"folds": 3},
    }
    result = client.submit_train(dataset["dataset_id"], config).wait(300, progress=False)
    assert result["version"] == "1.0.0" and result["metrics"]["roc_auc"] > 0.8
    assert result["training"]["trials"] == {"COMPLETE": 4}
    assert result["training"]["claims"]["done"] == 4
    assert result["training"]["runners"] == 1  # 2 asked for: SQLite runs one at a time
    storage = f"sqlite:///{home / 'optuna.sqlite'}"
    study = optuna.load_study(study_name=result["study_name"], storage=storage)
    assert len(study.trials) == 4
    # The grid strategy: the 4 logistic-regression presets, each once.
    grid = {**config, "optimization": {**config["optimization"], "strategy": "grid"}}
    result = client.submit_train(dataset["dataset_id"], grid).wait(300, progress=False)
    assert result["version"] == "1.0.1"
    study = optuna.load_study(study_name=result["study_name"], storage=storage)
    assert sorted(t.params["preset"] for t in study.trials) == [0, 1, 2, 3]

"""`cipml demo` (the main job) and `cipml stack` with Flower, as a user runs them."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from api_client import Client
from tests.acceptance.helpers import eventually
from tests.support.workers import CIPML

pytestmark = pytest.mark.slow
SHA = re.compile(r"sha256 \(Parquet\)\s+([0-9a-f]{64})")
REPORT = re.compile(r"report: file://(\S+\.html)")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CIPML_")}


@pytest.mark.timeout(900)  # two demo runs
def test_demo_on_a_fresh_folder_with_no_servers(tmp_path: Path) -> None:
    run = subprocess.run(
        [CIPML, "demo"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=480
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[4/11] ingest" in run.stdout and "69,659 x 4" in run.stdout
    assert "quality 99.7/100" in run.stdout
    assert "255 exact duplicate rows" in run.stdout  # the top recommendation
    assert "23,570 customers x 105 features" in run.stdout
    assert "churn base rate 70.1%" in run.stdout
    assert (
        "customer_churn 1.0.0" in run.stdout and "holdout (4,714 customers): ROC AUC" in run.stdout
    )
    assert "top features (permutation importance" in run.stdout
    assert "against default gradient boosting on 9 plain RFM columns" in run.stdout
    assert "95% paired bootstrap" in run.stdout
    assert "champion -> customer_churn 1.0.0 (set; revision 1)" in run.stdout
    assert "scored 23,570 customers by reference" in run.stdout
    assert run.stdout.count("inline: customer") == 3
    assert "true outcomes by customer: 23,570 recorded" in run.stdout
    assert "<- raw input file://" in run.stdout
    # Step 9: an A/B test decided on every tick, and a degraded canary rolled back.
    assert "deployed customer_churn 1.0.0: champion 1.0.0 100%" in run.stdout
    assert "challenger 1.0.1: the same search with seed 1" in run.stdout
    assert re.search(r"decision: (promoted|rejected|extended) — lift [+-]\d", run.stdout)
    assert "canary: 1.1.0 (trained on shuffled labels) vs 1.0.0" in run.stdout
    assert re.search(r"tick \d: rolled_back +rolled back from version 1\.1\.0", run.stdout)
    assert "guardrail breached:" in run.stdout
    # Step 10: the champion checked on the demo's traffic, then on a drifted copy.
    assert re.search(r"the last hour of logged traffic \([\d,]+ predictions of 1\.0\.0", run.stdout)
    drifted = re.search(r"drifted features: (.+)", run.stdout.split("a copy of the customers")[1])
    assert drifted and set(drifted.group(1).split(", ")) == {"frequency", "dollar_value__sum"}
    assert run.stdout.count("    report: file://") == 2
    # Step 11: bank marketing replayed; drift found, alerts raised, retrains decided.
    story = run.stdout.split("[11/11]")[1]
    assert "2009: 14,862 contacts served" in story and "2010: 2,620 contacts served" in story
    assert "alert raised MEDIUM feature_drift" in story
    assert story.count("retrain enqueued (") == 2
    assert len(re.findall(r"decision: (promoted|rejected): challenger ROC AUC", story)) == 2
    page = REPORT.search(run.stdout)
    assert page is not None
    html = Path(page.group(1)).read_text()
    assert "cdnow_transactions" in html and "<svg" in html
    sha = SHA.search(run.stdout)
    assert sha is not None
    stored = next((tmp_path / ".cipml" / "artifacts" / "sha256").rglob(sha.group(1)))
    import hashlib

    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha.group(1)
    assert "single machine, at-most-once" in run.stderr
    assert _cipml_processes_under(tmp_path) == []
    again = subprocess.run(
        [CIPML, "demo"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=480
    )
    assert again.returncode == 0 and "yes: this source was ingested before" in again.stdout
    assert "customer_churn 1.0.0" in again.stdout  # the same features: already trained
    assert "(already set; revision 1)" in again.stdout
    assert "0 recorded, 23,570 updated" in again.stdout
    assert "guardrail breached:" in again.stdout  # a new canary, rolled back again
    assert "2009 and 2010 were replayed here before" in again.stdout
    assert again.stdout.count("    retrain ") == 2


@pytest.mark.timeout(600)
def test_demo_on_redis_and_postgresql(service_env: dict[str, str], tmp_path: Path) -> None:
    # Any worker on the broker may take the job: the demo uses the cluster's data roots.
    run = subprocess.run(
        [CIPML, "demo"],
        cwd=tmp_path,
        env=service_env,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mode: distributed" in run.stdout and "postgresql+psycopg" in run.stdout
    assert SHA.search(run.stdout)
    assert "quality 99.7/100" in run.stdout and REPORT.search(run.stdout)


def _cipml_processes_under(folder: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            if process.info["cwd"] == str(folder) and process.pid != os.getpid():
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flower(port: int, path: str) -> dict:
    """GET a Flower API path; {} while Flower has not seen the task yet (404)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"ops:s3cret").decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise


def _training_progress_in_flower(client: Client, port: int, data_root: Path) -> None:
    """A training search reports each trial on its runner task, where Flower shows it."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=400)
    table = pd.DataFrame({"x": x + rng.normal(size=400), "label": (x > 0).astype(int)})
    path = data_root / f"flower-{uuid.uuid4().hex[:6]}.csv"
    table.to_csv(path, index=False)
    dataset = client.submit("ingest_dataset", {"uri": path.name, "name": path.stem}).wait(60)
    config = {
        "model_name": "flower",
        "model_type": "lead_scoring",
        "optimization": {"n_trials": 25, "families": ["logistic_regression"]},
    }
    handle = client.submit_train(dataset["dataset_id"], config)
    lines: set[str] = set()

    def two_trial_lines() -> bool:
        info = _flower(port, f"/api/task/info/{handle.id}-runner-0")
        if info.get("state") == "PROGRESS" and str(info.get("result", "")).startswith("trial "):
            lines.add(info["result"])
        return len(lines) >= 2

    eventually(two_trial_lines, timeout=120, interval=0.1, what="two trial lines in Flower")
    assert handle.wait(300, progress=False)["version"]


def test_stack_shows_progress_in_flower_and_stops_cleanly(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **service_env,
        "CIPML_FLOWER_PORT": str(port),
        "CIPML_FLOWER_BASIC_AUTH": "ops:s3cret",
        "CIPML_HOME": str(tmp_path),
    }
    stack = subprocess.Popen(
        [CIPML, "stack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        eventually(lambda: _flower_up(port), timeout=60, what="Flower to answer")
        descendants = psutil.Process(stack.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in descendants)
        assert "worker" in names and "beat" in names and "flower" in names
        with Client(service_env["CIPML_BROKER_URL"]) as client:
            handle = client.submit("diagnostics.probe", {"seconds": 3, "steps": 6})
            lines: set[str] = set()

            def two_lines() -> bool:
                info = _flower(port, f"/api/task/info/{handle.id}")
                if info.get("state") == "PROGRESS" and info.get("result"):
                    lines.add(info["result"])
                return len(lines) >= 2

            eventually(two_lines, timeout=60, interval=0.2, what="two progress lines in Flower")
            assert all(line.startswith("probe: step") for line in lines)
            handle.result(timeout=60)
            final = eventually(
                lambda: (
                    (i := _flower(port, f"/api/task/info/{handle.id}")).get("state") == "SUCCESS"
                    and i
                ),
                timeout=30,
                what="final state",
            )
            assert "SUCCEEDED" in final["result"]
            _training_progress_in_flower(client, port, Path(service_env["CIPML_DATA_ROOTS"]))
        stack.send_signal(signal.SIGTERM)
        output, _ = stack.communicate(timeout=60)
        assert "cipml stack: stopping" in output
        assert f"http://127.0.0.1:{port}" in output
        time.sleep(1)
        assert [p.pid for p in descendants if p.is_running() and p.status() != "zombie"] == []
    finally:
        if stack.poll() is None:  # the children die with it (PR_SET_PDEATHSIG)
            os.killpg(stack.pid, signal.SIGKILL)


def test_stack_children_die_with_a_killed_stack(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**service_env, "CIPML_FLOWER_PORT": str(_free_port()), "CIPML_HOME": str(tmp_path)}
    stack = subprocess.Popen(
        [CIPML, "stack"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    children = eventually(
        lambda: len(c := psutil.Process(stack.pid).children()) >= 3 and c,
        timeout=30,
        what="the stack's children",
    )
    time.sleep(3)
    stack.kill()
    stack.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=60)
    assert alive == []


def _flower_up(port: int) -> bool:
    try:
        _flower(port, "/api/workers?refresh=false")
        return True
    except OSError:
        return False

"""The `cipml` command against real services."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.support.workers import CIPML, WorkerProcess

pytestmark = pytest.mark.slow


def cipml(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIPML, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_submit_wait_status_jobs_cancel(service_env: dict[str, str], worker: WorkerProcess) -> None:
    done = cipml(
        service_env, "submit", "diagnostics.probe", "-p", "seconds=0.2", "-p", "steps=2", "--wait"
    )
    assert done.returncode == 0, done.stderr
    job_id, *result = done.stdout.splitlines()
    assert json.loads("\n".join(result)) == {"steps": 2, "attempt": 1}
    record = json.loads(cipml(service_env, "status", job_id).stdout)
    assert record["status"] == "SUCCEEDED" and record["attempts"] == 1
    listing = cipml(service_env, "jobs", "--status", "SUCCEEDED", "--limit", "200").stdout
    assert job_id in listing
    assert "nothing to cancel" in cipml(service_env, "cancel", job_id).stdout
    waited = cipml(service_env, "wait", job_id)
    assert json.loads(waited.stdout) == {"steps": 2, "attempt": 1}


def test_errors_say_what_to_do(service_env: dict[str, str], worker: WorkerProcess) -> None:
    bad = cipml(service_env, "submit", "diagnostics.probe", "-p", "seconds=soon")
    assert bad.returncode != 0
    assert "[invalid_params] invalid params for diagnostics.probe: seconds" in bad.stderr
    unknown = cipml(service_env, "submit", "training.nope")
    assert "[unknown_job_type]" in unknown.stderr and "diagnostics.probe" in unknown.stderr
    failed = cipml(
        service_env,
        "submit",
        "diagnostics.probe",
        "--params",
        '{"faults": {"raise_error": true}}',
        "--wait",
    )
    assert failed.returncode == 1 and "[internal_error]" in failed.stderr
    missing = cipml(service_env, "status", "no-such-job")
    assert missing.returncode != 0 and "[job_not_found]" in missing.stderr
    queue = cipml(service_env, "worker", "-Q", "gpu")
    assert queue.returncode != 0 and "unknown queue(s) ['gpu']" in queue.stderr
    setting = cipml({**service_env, "CIPML_MAX_ATTEMPTS": "zero"}, "info")
    assert setting.returncode != 0 and "bad CIPML_* setting" in setting.stderr


def test_info_masks_secrets(service_env: dict[str, str]) -> None:
    env = {**service_env, "CIPML_BROKER_URL": "redis://:hunter2@127.0.0.1:6379/0"}
    out = cipml(env, "info").stdout
    assert "hunter2" not in out and "distributed" in out


def test_beat_starts_and_stops_without_orphans(service_env: dict[str, str], tmp_path: Path) -> None:
    beat = subprocess.Popen(
        [CIPML, "beat"],
        env=service_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline, seen = time.monotonic() + 30, ""
    while "beat: Starting" not in seen and time.monotonic() < deadline:
        seen += beat.stdout.readline() if beat.stdout else ""
    assert "beat: Starting" in seen
    assert psutil.Process(beat.pid).children(recursive=True) == []  # beat is this process
    beat.send_signal(signal.SIGTERM)
    beat.wait(timeout=30)  # it stops on SIGTERM (celery beat exits 1 then), leaving nothing

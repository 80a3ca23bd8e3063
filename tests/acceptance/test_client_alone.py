"""The client works with only its own declared dependencies (api_client/requirements.txt):
a fresh virtual environment with just those, and a copy of api_client/, submits a real job."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from tests.support.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import importlib.util, sys
    for server_side in ("sqlalchemy", "storage", "workers", "pandas", "psycopg"):
        assert importlib.util.find_spec(server_side) is None, server_side
    from api_client import Client, InvalidRequest
    client = Client(sys.argv[1])
    try:
        client.submit("diagnostics.probe", {"seconds": "soon"})
    except InvalidRequest as exc:
        print("refused:", exc.code)
    handle = client.submit("diagnostics.probe", {"seconds": 0.2, "steps": 2})
    print("result:", handle.wait(timeout=60, progress=True))
    print("status:", handle.status())
""")


def test_client_in_a_fresh_virtualenv(
    tmp_path: Path, worker: WorkerProcess, service_env: dict[str, str]
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(ROOT / "api_client" / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    app_dir = tmp_path / "app"
    shutil.copytree(ROOT / "api_client", app_dir / "api_client")
    (app_dir / "use_client.py").write_text(SCRIPT)
    run = subprocess.run(
        [str(python), "use_client.py", service_env["CIPML_BROKER_URL"]],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "refused: invalid_params" in run.stdout
    assert "result: {'steps': 2, 'attempt': 1}" in run.stdout
    assert "status: SUCCEEDED" in run.stdout
    assert sys.executable not in run.stdout

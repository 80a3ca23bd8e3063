"""Imports flow one way: api_client <- storage <- workers <- scheduler."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_SIDE = (
    "storage",
    "workers",
    "scheduler",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "sklearn",
    "optuna",
    "pandas",
    "numpy",
    "fsspec",
    "psutil",
)


def test_import_linter_contract_holds() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_client_imports_nothing_server_side() -> None:
    for path in (ROOT / "api_client").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in SERVER_SIDE, f"{path.name} imports {name}"


def test_client_requirements_are_what_it_declares() -> None:
    declared = (ROOT / "api_client" / "requirements.txt").read_text().split()
    assert [d.split("[")[0].split(">")[0] for d in declared] == ["celery", "redis", "pydantic"]

"""The docs list every setting and every error code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from api_client.contract import ErrorCode
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"CIPML_{name.upper()}"
        for name in Settings.model_fields
        if f"CIPML_{name.upper()}" not in readme
    ]
    assert missing == []


def test_settings_table_is_current() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_settings_table.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_error_code_is_documented() -> None:
    errors = (ROOT / "docs" / "errors.md").read_text()
    assert [code.value for code in ErrorCode if f"`{code.value}`" not in errors] == []

"""Which build of cip-ml is running: recorded with every model version (lineage)."""

from __future__ import annotations

import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@cache
def build_info(declared_commit: str | None = None) -> dict[str, str | None]:
    """The package version and, when known, the git commit: the declared one
    (CIPML_GIT_COMMIT, for images built without .git) or the checkout the code runs from."""
    try:
        package = version("cip-ml")
    except PackageNotFoundError:
        package = None
    return {"package_version": package, "git_commit": declared_commit or _checkout_commit()}


def _checkout_commit() -> str | None:
    source = Path(__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if len(commit) == 40 else None

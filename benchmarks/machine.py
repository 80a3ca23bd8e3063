"""The machine a benchmark ran on: hardware, OS, versions, git state and load, for reports.

Shared by the benchmark scripts; each adds its own versions (and any extra facts) to
``describe_machine``. Git is only read (``--no-optional-locks``: no index refresh), so a
benchmark can run while someone else commits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Literal


def git(cwd: Path, *args: str) -> str:
    """Output of a read-only git command in ``cwd``; '' outside a checkout or on failure."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def source_state(source: Path, *, diff_digest: bool = True) -> str:
    """``source @ commit``, plus the number of changed tracked files (and, with
    ``diff_digest``, the sha256 of ``git diff HEAD``) when the tree is not clean."""
    commit = git(source, "rev-parse", "--short", "HEAD").strip() or "?"
    changed = git(source, "status", "--porcelain", "--untracked-files=no").splitlines()
    if changed:
        commit += f" + uncommitted changes to {len(changed)} files"
        if diff_digest:
            digest = hashlib.sha256(git(source, "diff", "HEAD").encode()).hexdigest()[:12]
            commit += f" (diff sha256 {digest})"
    return f"{source} @ {commit}"


def cpu_model() -> str:
    """The first ``model name`` of /proc/cpuinfo ('unknown' without one)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def nproc() -> str:
    """CPUs this process may use, as ``nproc`` counts them (``os.cpu_count()`` without it)."""
    try:
        done = subprocess.run(["nproc"], capture_output=True, text=True, check=False)
    except OSError:
        return str(os.cpu_count())
    return done.stdout.strip() or str(os.cpu_count())


def memory_gib() -> float:
    """Total memory (``MemTotal`` of /proc/meminfo) in GiB; 0.0 where it cannot be read."""
    with contextlib.suppress(OSError):
        found = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        if found:
            return int(found.group(1)) / 2**20
    return 0.0


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed version of each distribution, '-' for one that is not installed."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    return versions


def describe_machine(
    source: Path,
    versions: Mapping[str, str],
    *,
    cpus: Literal["nproc", "cpus"] = "nproc",
    diff_digest: bool = True,
) -> dict[str, str]:
    """CPU count, CPU model, memory, OS, Python, ``versions`` (in their order) and the git
    state of ``source`` (key ``service source``), as report labels to values.

    ``cpus="nproc"`` counts the usable CPUs (``nproc``), ``"cpus"`` all (``os.cpu_count()``);
    the key is that name.
    """
    count = nproc() if cpus == "nproc" else str(os.cpu_count())
    return {
        cpus: count,
        "cpu": cpu_model(),
        "memory": f"{memory_gib():.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions,
        "service source": source_state(source, diff_digest=diff_digest),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages ('?' where the OS has none)."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def report_header(
    started: datetime,
    command: str,
    machine: Mapping[str, str],
    load_before: str,
    load_after: str,
) -> list[str]:
    """The first lines of a report: when and what ran, the machine, the load around it."""
    return [
        f"Run {started:%Y-%m-%d %H:%M} UTC: `{command.strip()}`",
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in machine.items()),
        f"Load average (1/5/15 min) before: {load_before}, after: {load_after}",
    ]


def status_kib(name: str) -> int:
    """A ``/proc/self/status`` figure in KiB (``VmRSS``, ``VmHWM``); 0 where there is none."""
    with contextlib.suppress(OSError):
        found = re.search(rf"^{name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
        return int(found.group(1)) if found else 0
    return 0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True

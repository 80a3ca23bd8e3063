"""Native thread counts for training, shared fairly between the compute processes of a machine.

BLAS and OpenMP each start one thread per core in every process. Two worker processes on
two cores, each with the default, ran histogram gradient boosting 15x slower than with
their threads capped (OpenMP threads spin while waiting for each other). So each compute
process registers itself in a machine-local directory, and "auto" gives every registered
process an equal share of the cores this process may run on.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from threadpoolctl import threadpool_limits

_registered: set[Path] = set()


def _default_registry() -> Path:
    # Per user: another user's workers are not ours to count, nor their files ours to remove.
    return Path(tempfile.gettempdir()) / f"cipml-compute-{os.getuid()}"


def _unregister(path: Path) -> None:
    path.unlink(missing_ok=True)


def register_process(registry_dir: Path | None = None) -> None:
    """Count this process as a compute process until it exits."""
    directory = registry_dir or _default_registry()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / str(os.getpid())
    path.touch()
    if path not in _registered:
        _registered.add(path)
        atexit.register(_unregister, path)


def compute_processes(registry_dir: Path | None = None) -> int:
    """Registered processes still alive on this machine (at least 1, this one). Files of
    processes that died without running their exit handlers (killed) are removed."""
    directory = registry_dir or _default_registry()
    alive = 0
    for path in directory.glob("*") if directory.is_dir() else ():
        if not path.name.isdigit():
            continue
        if psutil.pid_exists(int(path.name)):
            alive += 1
        else:
            path.unlink(missing_ok=True)
    return max(1, alive)


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_process(configured: int, registry_dir: Path | None = None) -> int:
    """``configured`` threads if positive; 0 means auto: an equal share of the cores."""
    if configured < 0:
        raise ValueError(f"threads must be 0 (auto) or positive, not {configured}")
    if configured:
        return configured
    return max(1, available_cores() // compute_processes(registry_dir))


@contextmanager
def limited_threads(n: int) -> Iterator[None]:
    """At most ``n`` BLAS and OpenMP threads inside the block, the previous limits after.

    threadpoolctl changes the loaded libraries' own settings, no environment variable, so
    nothing leaks out of the block.
    """
    with threadpool_limits(limits=n):
        yield

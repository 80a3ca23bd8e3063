"""Child processes for local development (`cipml stack`, `cipml demo`): each in its own
session, so one signal stops a child with everything it started, and none is orphaned."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    where: str


class Children:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        argv: list[str],
        where: str,
        *,
        quiet: bool = False,
        env: dict[str, str] | None = None,
    ) -> Child:
        output = subprocess.DEVNULL if quiet else None
        process = subprocess.Popen(
            argv,
            start_new_session=True,
            stdout=output,
            stderr=output,
            env=env,
            preexec_fn=die_with_parent,
        )
        child = Child(name=name, process=process, where=where)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self, timeout: float = 30, sig: int = signal.SIGTERM) -> None:
        """SIGTERM every child (a Celery worker then stops its own pool: signalling the pool
        processes too only makes it log them as lost), then SIGKILL whatever is left of each
        child's process group."""
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(sig)
        deadline = time.monotonic() + timeout
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children:
            _signal_group(child.process, signal.SIGKILL)  # stragglers of the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this process dies, even by SIGKILL (no orphans)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def cipml_argv(*args: str) -> list[str]:
    """Run a `cipml` subcommand with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "workers.cli", *args]

"""Child processes for local development (`cipml stack`, `cipml demo`): each in its own
session, so one signal stops a child with everything it started, and none is orphaned."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass


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
            argv, start_new_session=True, stdout=output, stderr=output, env=env
        )
        child = Child(name=name, process=process, where=where)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every child's process group (warm shutdown), then SIGKILL what is left."""
        for child in self.children:
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children:
            _signal_group(child.process, signal.SIGKILL)  # stragglers of the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def cipml_argv(*args: str) -> list[str]:
    """Run a `cipml` subcommand with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "workers.cli", *args]

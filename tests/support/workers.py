"""Real `cipml worker` processes started as subprocesses, with their logs kept for asserts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CIPML = str(Path(sys.executable).with_name("cipml"))


class WorkerProcess:
    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        concurrency: int = 2,
        queues: str | None = None,
        name: str = "w",
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.queues = queues
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> WorkerProcess:
        """Start the process without waiting (several workers then boot side by side)."""
        argv = [CIPML, "worker", "-c", str(self.concurrency), "-n", f"{self.name}@%h"]
        if self.queues:
            argv += ["-Q", self.queues]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        """Until the worker logs ready; one that never does is stopped before the error (a
        leftover would serve the queues of a later run that gets the same Redis db)."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error: Exception = RuntimeError(f"worker exited early:\n{self.log()[-3000:]}")
                break
            if self.log().count("ready.") >= self._expected_ready():
                return self
            time.sleep(0.1)
        else:
            error = TimeoutError(f"worker not ready in {timeout}s:\n{self.log()[-3000:]}")
        self.stop()
        raise error

    def _expected_ready(self) -> int:
        """`cipml worker` serving control beside other queues runs a second, control-only
        worker; wait for both."""
        queues = (self.queues or "all").split(",")
        return 2 if queues == ["all"] or ("control" in queues and len(queues) > 1) else 1

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_all(self) -> None:
        """SIGKILL the main process and its pool at once (a machine dying)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self) -> None:
        stop_all([self])

    def _ask_to_stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # The main process only: it stops its pool (signalled pool processes can leave
            # billiard waiting forever in _help_stuff_finish).
            self.process.send_signal(signal.SIGTERM)

    def _reap(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill_all()
        with contextlib.suppress(ProcessLookupError):  # orphaned pool children, if any
            os.killpg(self.pid, signal.SIGKILL)
        self._log.close()
        self.process = None


def stop_all(workers: list[WorkerProcess]) -> None:
    """Stop several workers at once: each warm shutdown takes seconds, so they overlap."""
    for worker in workers:
        worker._ask_to_stop()
    for worker in workers:
        worker._reap()

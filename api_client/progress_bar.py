"""A one-line terminal progress bar; silent when the stream is not a terminal."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from api_client.schemas import Progress


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._started = time.monotonic()
        self._last = ""

    def update(self, status: str, progress: Progress | None) -> None:
        if not self.enabled:
            return
        line = self.render(status, progress, time.monotonic() - self._started)
        if line != self._last:
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: width - 1].ljust(min(len(self._last), width - 1)))
            self.stream.flush()
            self._last = line

    def close(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\n")
            self.stream.flush()

    def render(self, status: str, progress: Progress | None, elapsed: float) -> str:
        head = f"{self.label} {status.lower():<9}"
        if progress is None or not progress.total:
            text = f" {progress.line}" if progress and progress.line else ""
            return f"{head}{text} [{elapsed:4.0f}s]"
        fraction = max(0.0, min(1.0, progress.done / progress.total))
        filled = int(fraction * 24)
        bar = "#" * filled + "-" * (24 - filled)
        eta = ""
        if 0 < fraction < 1:
            eta = f" eta {elapsed * (1 - fraction) / fraction:4.0f}s"
        text = progress.line or f"{progress.stage} {progress.done:g}/{progress.total:g}"
        return f"{head} [{bar}] {fraction:4.0%} {text} [{elapsed:4.0f}s{eta}]"

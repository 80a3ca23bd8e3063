"""Wall time, CPU time and peak memory of one job inside a long-lived pool process.

``ru_maxrss`` only grows across the jobs a pool process runs, so it cannot tell one job's
peak. On Linux the peak (VmHWM) is reset at the start of the job by writing 5 to
/proc/self/clear_refs and read at its end; where that is refused, a thread samples RSS
every 50 ms instead.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

SAMPLE_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Usage:
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int

    def as_columns(self) -> dict[str, float | int]:
        return {
            "wall_s": round(self.wall_s, 6),
            "cpu_s": round(self.cpu_s, 6),
            "peak_rss_bytes": self.peak_rss_bytes,
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _vm_hwm_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class ResourceMeter:
    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._sampled_peak = 0
        self._thread = threading.Thread(target=self._sample, name="cipml-rss", daemon=True)
        self.usage: Usage | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._sampled_peak = max(self._sampled_peak, self._process.memory_info().rss)
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __enter__(self) -> ResourceMeter:
        self._hwm_reset = _reset_peak()
        self._wall0, self._cpu0 = time.perf_counter(), _cpu_seconds()
        if not self._hwm_reset:  # the kernel's peak is exact; sample only without it
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        peak = max(self._sampled_peak, self._process.memory_info().rss)
        hwm = _vm_hwm_bytes() if self._hwm_reset else None
        self.usage = Usage(
            wall_s=time.perf_counter() - self._wall0,
            cpu_s=_cpu_seconds() - self._cpu0,
            peak_rss_bytes=max(peak, hwm or 0),
        )

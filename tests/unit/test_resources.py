"""Peak memory is the job's own, not the pool process's lifetime peak."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from api_client.progress_bar import ProgressBar
from api_client.schemas import Progress
from workers.jobs.resources import ResourceMeter

MIB = 1 << 20


def test_peak_is_reset_per_job() -> None:
    # A fresh interpreter: first touch 400 MiB and free it (like an earlier job in the same
    # pool process), then meter a job that touches 100 MiB.
    script = textwrap.dedent("""
        import numpy as np
        from workers.jobs.resources import ResourceMeter
        big = np.ones(400 * 2**20 // 8); del big
        with ResourceMeter() as meter:
            small = np.ones(100 * 2**20 // 8); small.sum(); del small
        print(meter.usage.peak_rss_bytes)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    peak = int(out.stdout.strip())
    assert 100 * MIB < peak < 350 * MIB


def test_wall_and_cpu_time() -> None:
    with ResourceMeter() as meter:
        time.sleep(0.2)
        deadline = time.process_time() + 0.1
        while time.process_time() < deadline:
            pass
    assert meter.usage is not None
    assert 0.29 <= meter.usage.wall_s < 1.0
    assert 0.09 <= meter.usage.cpu_s < 0.5


def test_progress_bar_line() -> None:
    bar = ProgressBar("probe 1234", enabled=True)
    line = bar.render("RUNNING", Progress(stage="probe", done=1, total=4, line="step 1/4"), 10.0)
    assert line == (
        "probe 1234 running   [######------------------]  25% step 1/4 [  10s eta   30s]"
    )
    assert bar.render("QUEUED", None, 2.0) == "probe 1234 queued    [   2s]"


def test_progress_bar_is_silent_off_a_terminal(capsys) -> None:  # type: ignore[no-untyped-def]
    bar = ProgressBar("x")  # pytest's captured stderr is not a tty
    bar.update("RUNNING", Progress(stage="s", done=1, total=2))
    bar.close()
    assert capsys.readouterr().err == ""


def test_sampling_fallback_where_the_peak_cannot_be_reset() -> None:
    script = textwrap.dedent("""
        import time
        import numpy as np
        import workers.jobs.resources as r
        r._reset_peak = lambda: False
        with r.ResourceMeter() as meter:
            block = np.ones(200 * 2**20 // 8); time.sleep(0.2); del block
        print(meter.usage.peak_rss_bytes)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) > 200 * MIB

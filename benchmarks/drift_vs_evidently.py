"""Drift statistics against Evidently's data-drift preset (issue #10: ">= 100x Evidently").

Evidently 0.7 needs pandas < 3, so it runs in an environment of its own, named by
``--evidently-python``; make one with::

    python3 -m venv /tmp/evvenv
    /tmp/evvenv/bin/pip install 'evidently>=0.7,<0.8' 'pandas<3'

The seeded frames of ``drift_speed.py`` (``make_frames``: 50 numeric + 10 categorical
columns, 10 drifted) are written to Parquet once per size; this process times ours, the
other interpreter (``evidently_runner.py``) times ``Report([DataDriftPreset()]).run`` on
the same rows. Reading the files is timed on neither side. Ours: ``data_drift`` with the
reference prepared in the call ("cold") and prepared once ("prepared", what a monitoring
worker caches), best of ``--repeat``; Evidently: best of ``--evidently-repeat`` (a 1M-row
run takes minutes). Prints both times, the ratio and the peak RSS of each process. Run
from the repository root::

    .venv/bin/python -m benchmarks.drift_vs_evidently --evidently-python /tmp/evvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.drift_speed import make_frames, timed
from benchmarks.machine import describe_machine, load_average, package_versions, report_header
from workers.monitoring.drift import data_drift, prepare_reference

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "evidently_runner.py"
TARGET_RATIO = 100.0


def compare(rows: int, seed: int, repeat: int, evidently_python: str, ev_repeat: int) -> str:
    reference, current, drifted = make_frames(rows, seed)
    with tempfile.TemporaryDirectory() as folder:
        ref_path, cur_path = Path(folder) / "reference.parquet", Path(folder) / "current.parquet"
        reference.to_parquet(ref_path, index=False)
        current.to_parquet(cur_path, index=False)
        began = time.perf_counter()
        run = subprocess.run(
            [evidently_python, str(RUNNER), str(ref_path), str(cur_path), str(ev_repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        ev_wall = time.perf_counter() - began
    evidently = json.loads(run.stdout.strip().splitlines()[-1])
    cold = min(
        (timed(lambda: data_drift(reference, current)) for _ in range(repeat)), key=lambda t: t[0]
    )
    prepared = prepare_reference(reference)
    warm = min(
        (timed(lambda: data_drift(prepared, current)) for _ in range(repeat)), key=lambda t: t[0]
    )
    flagged = {f.name for f in warm[3].features if f.drifted}
    seconds = float(evidently["seconds"])
    return (
        f"| {rows:,} | {seconds:.2f} s ({evidently['peak_rss_mib']:,} MiB; "
        f"{evidently['drifted']} of 60 flagged) | {cold[0]:.3f} s | {warm[0]:.3f} s "
        f"({warm[4]:,} MiB; {len(flagged & drifted)} of {len(drifted)} drifted flagged, "
        f"{len(flagged - drifted)} extra) | {seconds / cold[0]:.0f}x | {seconds / warm[0]:.0f}x | "
        f"{ev_wall:.0f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evidently-python", required=True, help="interpreter with Evidently")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="our runs (best of)")
    parser.add_argument("--evidently-repeat", type=int, default=1, help="Evidently's runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    command = shlex.join(
        [sys.executable, "-m", "benchmarks.drift_vs_evidently"]
        + (argv if argv is not None else sys.argv[1:])
    )
    machine = describe_machine(ROOT, package_versions(["numpy", "numba", "pandas", "scipy"]))
    load_before, started = load_average(), datetime.now(UTC)
    rows = [
        compare(n, args.seed, args.repeat, args.evidently_python, args.evidently_repeat)
        for n in args.rows
    ]
    versions = subprocess.run(
        [
            args.evidently_python,
            "-c",
            "import evidently, pandas; print(evidently.__version__, pandas.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    lines = report_header(started, command, machine, load_before, load_average())
    lines += [
        "",
        f"Evidently {versions[0]} (pandas {versions[1]}), DataDriftPreset defaults; reading "
        "the Parquet files not timed on either side; ours on 2 threads.",
        "",
        "| rows (each window) | Evidently preset (peak RSS; columns flagged) | ours, cold "
        "| ours, prepared (peak RSS; flags) | Evidently / ours cold | Evidently / ours "
        "prepared | Evidently process wall |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Target: >= {TARGET_RATIO:.0f}x Evidently at 1M rows.",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

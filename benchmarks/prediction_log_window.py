"""Prediction log window read: ``PredictionLog.read`` of 24 hours next to pandas.

Writes ``--rows`` (default 1,000,000) seeded predictions of one model, with 20 typed feature
columns (10 float64, 5 int64, 5 string categories), spread evenly over 24 hours and written
in ``--batches`` (default 100) time-ordered batches, into a temporary SQLite database and a
temporary log folder. Then, in the same run:

* **ours**: ``PredictionLog.read(session, model, start, end)`` of the whole 24 h window
  (index query, per-file reads, window filter, sort check, to pandas); the first read after
  the writes ("first") and the best of ``--repeat`` (default 3) more;
* **baseline**: ``pandas.read_parquet`` of the same file list directly (no index, filter or
  sort), best of ``--repeat``.

Target: ours reads the 1M-row window in under 2 s. Run from the repository root::

    .venv/bin/python -m benchmarks.prediction_log_window [--rows 1000000]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.machine import describe_machine, load_average, package_versions
from storage.db import make_engine, make_session_factory, transaction
from storage.migrate import upgrade
from storage.prediction_log import PredictionLog

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 2.0
MODEL = "churn"
START = datetime(2026, 11, 26, tzinfo=UTC)
HOURS = 24


def batch_frame(rng: np.random.Generator, first: int, n: int, total: int) -> pd.DataFrame:
    """Rows ``first .. first+n`` of ``total`` spread evenly over the 24 hours."""
    span_us = HOURS * 3_600 * 1_000_000
    micros = (np.arange(first, first + n, dtype=np.int64) * span_us) // total
    when = pd.to_datetime(START) + pd.to_timedelta(micros, unit="us")
    millis = (micros // 1000) + int(START.timestamp() * 1000)
    noise = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    ids = [f"{m:012x}{a:016x}{b & 0xFFFF:04x}" for m, (a, b) in zip(millis, noise, strict=True)]
    data: dict[str, object] = {
        "prediction_id": ids,
        "model_name": MODEL,
        "version": "1.4.0",
        "version_id": 7,
        "arm": rng.choice(["champion", "challenger"], n),
        "routing_key": [f"cust-{k}" for k in rng.integers(0, 200_000, n)],
        "score": rng.random(n),
        "label": rng.choice(["yes", "no"], n),
        "latency_ms": rng.gamma(2.0, 3.0, n),
        "predicted_at": when,
    }
    for i in range(10):
        data[f"feature.num_{i}"] = rng.normal(size=n)
    for i in range(5):
        data[f"feature.count_{i}"] = rng.integers(0, 1000, n)
    for i in range(5):
        data[f"feature.cat_{i}"] = rng.choice([f"c{i}_{j}" for j in range(12)], n)
    return pd.DataFrame(data)


def timed(work: Callable[[], int]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of this process (all threads) and the rows read."""
    began, cpu = time.perf_counter(), time.process_time()
    rows = work()
    return time.perf_counter() - began, time.process_time() - cpu, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print(
        "command:",
        shlex.join(
            [sys.executable, "-m", "benchmarks.prediction_log_window"]
            + (argv if argv is not None else sys.argv[1:])
        ),
    )
    machine = describe_machine(ROOT, package_versions(["pyarrow", "pandas", "numpy"]))
    print("machine:", "; ".join(f"{k} {v}" for k, v in machine.items()))
    print("load average before:", load_average())

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="cipml-predlog-") as folder:
        url = f"sqlite:///{folder}/bench.sqlite"
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        log = PredictionLog(f"{folder}/log")

        per_batch = -(-args.rows // args.batches)
        write_s = 0.0
        for b, first in enumerate(range(0, args.rows, per_batch)):
            frame = batch_frame(rng, first, min(per_batch, args.rows - first), args.rows)
            began = time.perf_counter()
            with transaction(sessions) as session:
                log.write(session, MODEL, frame, f"bench-{b}")
            write_s += time.perf_counter() - began
        with transaction(sessions) as session:
            files = log.files(session, MODEL)
        paths = [f"{folder}/log/{f.path}" for f in files]
        size_mb = sum(Path(p).stat().st_size for p in paths) / 2**20
        print(
            f"written: {args.rows:,} rows in {len(files)} files ({size_mb:.1f} MiB, zstd), "
            f"{write_s:.2f} s of log.write ({args.rows / write_s:,.0f} rows/s)"
        )

        end = START + timedelta(hours=HOURS)

        def ours() -> int:
            with transaction(sessions) as session:
                return len(log.read(session, MODEL, START, end))

        def baseline() -> int:
            return len(pd.read_parquet(paths, engine="pyarrow"))

        first_s, first_cpu, rows = timed(ours)
        ours_s, ours_cpu, _ = min(timed(ours) for _ in range(args.repeat))
        base_s, base_cpu, base_rows = min(timed(baseline) for _ in range(args.repeat))
        assert rows == base_rows == args.rows, (rows, base_rows)
        engine.dispose()

    verdict = "MET" if ours_s < TARGET_S else "MISSED"
    print(
        f"ours first read:     {first_s:.3f} s  cpu {first_cpu:.3f} s  "
        f"({rows / first_s:,.0f} rows/s)"
    )
    print(
        f"ours best of {args.repeat}:      {ours_s:.3f} s  cpu {ours_cpu:.3f} s  "
        f"({rows / ours_s:,.0f} rows/s)  target < {TARGET_S:.1f} s "
        f"for {args.rows:,} rows: {verdict}"
    )
    print(
        f"baseline best of {args.repeat}:  {base_s:.3f} s  cpu {base_cpu:.3f} s  "
        f"({rows / base_s:,.0f} rows/s)  pandas.read_parquet(file list)"
    )
    print(f"ratio ours / baseline: {ours_s / base_s:.2f}x the wall time")
    print("load average after:", load_average())
    return 0 if ours_s < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())

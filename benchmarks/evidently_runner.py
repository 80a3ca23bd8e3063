"""Run Evidently's data-drift preset on two Parquet files and print its time as JSON.

Executed by the interpreter of a separate environment with Evidently installed (it needs
pandas < 3): ``drift_vs_evidently.py`` starts it. Imports nothing from this repository.
Reading the files is not timed; ``Report([DataDriftPreset()]).run`` is, best of
``repeat``, with the peak RSS of the process.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def _peak_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def _drifted(snapshot: Any) -> int | None:
    """The preset's count of drifted columns, where the snapshot says it."""
    try:
        for metric in snapshot.dict()["metrics"]:
            value = metric.get("value")
            if "DriftedColumnsCount" in str(metric.get("metric_name", "")) and value:
                return int(value["count"])
    except Exception:  # an Evidently version that lays its result out otherwise
        return None
    return None


def main(reference_path: str, current_path: str, repeat: int) -> None:
    import evidently
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    best, drifted = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        best = min(best, time.perf_counter() - began)
        drifted = _drifted(snapshot)
    print(
        json.dumps(
            {
                "seconds": best,
                "peak_rss_mib": _peak_mib(),
                "drifted": drifted,
                "evidently": evidently.__version__,
                "pandas": pd.__version__,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

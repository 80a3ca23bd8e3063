"""The search's progress line: trials done of total, best so far, ETA (hand-checked)."""

from __future__ import annotations

from workers.training.progress import format_duration, search_line


def test_line_with_best_and_eta() -> None:
    # 10 of 40 trials in 30 s: 3 s a trial, 30 left -> 90 s.
    assert search_line(10, 40, "roc_auc", 0.81234, 30.0) == (
        "trial 10/40 · best roc_auc 0.8123 · ETA 1m30s"
    )


def test_no_best_yet_and_no_eta_at_the_ends() -> None:
    assert search_line(0, 40, "roc_auc", None, 5.0) == "trial 0/40"
    assert search_line(40, 40, "log_loss", 0.4, 120.0) == "trial 40/40 · best log_loss 0.4000"


def test_durations() -> None:
    assert [format_duration(s) for s in (0, 59.4, 60, 3599, 3600, 7325)] == [
        "0s",
        "59s",
        "1m00s",
        "59m59s",
        "1h00m",
        "2h02m",
    ]

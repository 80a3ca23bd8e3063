"""The human line of a search's progress: trials done of total, best so far, ETA."""

from __future__ import annotations


def search_line(done: int, total: int, metric: str, best: float | None, elapsed_s: float) -> str:
    parts = [f"trial {done}/{total}"]
    if best is not None:
        parts.append(f"best {metric} {best:.4f}")
    if 0 < done < total:
        parts.append(f"ETA {format_duration(elapsed_s / done * (total - done))}")
    return " · ".join(parts)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"

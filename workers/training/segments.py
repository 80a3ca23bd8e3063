"""Evaluation of a segmentation (clustering) model: separation scores, sizes, profiles.

Pure functions on a feature matrix ``X`` (as the model saw it), segment ``labels`` and, for
profiles, the raw frame the user knows. Every number returned is a plain Python float or int,
with None where a statistic is undefined, so the result is strict JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

WORST_SILHOUETTE = -1.0


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _allocation(sizes: np.ndarray, max_rows: int) -> np.ndarray:
    """Rows to take from each segment: proportional to its size, summing to ``max_rows``, at
    least one per segment when there is room for every segment (largest remainder rounding)."""
    quota = max_rows * sizes / sizes.sum()
    floor = 1 if len(sizes) <= max_rows else 0
    take = np.minimum(sizes, np.maximum(floor, np.floor(quota))).astype(int)
    # Floors and the minimum of one leave the total off by at most one row per segment.
    while take.sum() > max_rows:
        spare = np.flatnonzero(take > floor)
        take[spare[np.argmax(take[spare] - quota[spare])]] -= 1
    while take.sum() < max_rows:
        room = np.flatnonzero(take < sizes)
        take[room[np.argmax(quota[room] - take[room])]] += 1
    return take


def _sample_rows(labels: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``max_rows`` rows, each segment in its share; all rows when
    there are no more than ``max_rows``."""
    if len(labels) <= max_rows:
        return np.arange(len(labels))
    values, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    take = _allocation(sizes, max_rows)
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(inverse == code), size=take[code], replace=False)
        for code in range(len(values))
    ]
    return np.sort(np.concatenate(picked))


def _checked(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    labels = np.asarray(labels)
    if X.ndim != 2 or len(X) != len(labels):
        raise ValueError(f"need a 2-d X with one label per row ({X.shape} vs {labels.shape})")
    return X, labels


def _defined(labels: np.ndarray) -> bool:
    """Whether the separation scores are defined: 2 <= distinct labels <= rows - 1."""
    distinct = len(np.unique(labels))
    return 2 <= distinct <= len(labels) - 1


def _sampled_silhouette(
    X: np.ndarray, labels: np.ndarray, seed: int, max_rows: int
) -> float | None:
    # Silhouette is quadratic in rows, so it is taken on a stratified sample.
    rows = _sample_rows(labels, max_rows, seed)
    if not _defined(labels[rows]):
        return None
    return _number(float(silhouette_score(X[rows], labels[rows])))


def clustering_scores(
    X: np.ndarray, labels: np.ndarray, *, seed: int, max_rows: int = 3000
) -> dict[str, float | None]:
    """Silhouette (on a seeded, segment-stratified sample of at most ``max_rows`` rows; higher
    is better), Davies-Bouldin (lower is better) and Calinski-Harabasz (higher is better) on
    all rows. All None when there are fewer than two segments; each None where undefined."""
    X, labels = _checked(X, labels)
    if not _defined(labels):
        return {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    return {
        "silhouette": _sampled_silhouette(X, labels, seed, max_rows),
        "davies_bouldin": _number(float(davies_bouldin_score(X, labels))),
        "calinski_harabasz": _number(float(calinski_harabasz_score(X, labels))),
    }


def silhouette(X: np.ndarray, labels: np.ndarray, *, seed: int, max_rows: int = 3000) -> float:
    """The sampled silhouette as a search objective: -1.0, the worst score, when it is
    undefined (fewer than two segments), so a degenerate clustering loses the search instead
    of crashing it."""
    X, labels = _checked(X, labels)
    score = _sampled_silhouette(X, labels, seed, max_rows)
    return WORST_SILHOUETTE if score is None else score


def segment_sizes(labels: np.ndarray, n_segments: int) -> list[dict[str, Any]]:
    """Rows and share of every segment 0..n_segments-1, empty ones included (a model asked for
    five segments that fills four should say so)."""
    labels = np.asarray(labels).astype(int)
    if len(labels) and (labels.min() < 0 or labels.max() >= n_segments):
        raise ValueError(f"labels must lie in 0..{n_segments - 1}")
    counts = np.bincount(labels, minlength=n_segments)
    total = len(labels)
    return [
        {"segment": i, "rows": int(counts[i]), "share": int(counts[i]) / total if total else 0.0}
        for i in range(n_segments)
    ]


def _as_float(column: pd.Series) -> np.ndarray:
    """Floats with NaN for missing (nullable Int64/Float64/boolean included; bools become
    1.0/0.0). Infinities count as missing: they have no mean."""
    values = column.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    values[~np.isfinite(values)] = np.nan
    return values


def eta_squared(values: np.ndarray, codes: np.ndarray, n_codes: int) -> float | None:
    """Share of the variance of ``values`` between segments (between-segment over total sum
    of squares), NaN rows ignored; None when the present values do not vary."""
    present = ~np.isnan(values)
    values, codes = values[present], codes[present]
    if len(values) == 0:
        return None
    mean = values.mean()
    total = float(np.sum((values - mean) ** 2))
    if total <= 0.0:
        return None
    counts = np.bincount(codes, minlength=n_codes)
    sums = np.bincount(codes, weights=values, minlength=n_codes)
    filled = counts > 0
    between = float(np.sum(counts[filled] * (sums[filled] / counts[filled] - mean) ** 2))
    return min(max(between / total, 0.0), 1.0)


def _feature(values: np.ndarray, in_segment: np.ndarray, name: str) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    own = values[in_segment]
    own = own[~np.isnan(own)]
    mean = float(own.mean()) if len(own) else None
    population_mean = float(present.mean()) if len(present) else None
    std = float(present.std()) if len(present) else 0.0
    difference = None
    if mean is not None and population_mean is not None and std > 0.0:
        difference = (mean - population_mean) / std
    return {
        "feature": name,
        "mean": mean,
        "population_mean": population_mean,
        "difference_in_std": difference,
    }


def _as_text(column: pd.Series) -> pd.Series:
    """Values as strings (so any dtype gives JSON-safe values), missing ones dropped, on a
    positional index."""
    return column.reset_index(drop=True).dropna().astype(str)


def _category(text: pd.Series, in_segment: np.ndarray, name: str) -> dict[str, Any]:
    """The segment's most frequent value (missing ignored; equal counts by value), with its
    share of the segment's rows and of all rows."""
    own = text[in_segment[text.index.to_numpy()]]
    ranked = sorted(own.value_counts(sort=False).items(), key=lambda item: (-item[1], item[0]))
    if not ranked:
        return {"feature": name, "top_value": None, "share": None, "population_share": None}
    value, count = ranked[0]
    return {
        "feature": name,
        "top_value": str(value),
        "share": int(count) / int(in_segment.sum()),
        "population_share": int((text == value).sum()) / len(in_segment),
    }


def segment_profiles(
    frame: pd.DataFrame,
    labels: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    *,
    top: int = 8,
) -> dict[str, Any]:
    """What sets each segment apart, in the user's own columns.

    The top features are the ``top`` numeric columns that separate the segments most, ranked
    by eta squared (columns that do not vary last, equal values by name). For each segment
    present in ``labels``: its size, its mean of each top feature against the population mean
    (the difference in population standard deviations, ddof 0), and its most frequent value of
    every categorical column against that value's share in the population.
    """
    labels = np.asarray(labels)
    if len(labels) != len(frame) or len(frame) == 0:
        raise ValueError(
            f"need one label per row of a non-empty frame ({len(labels)} vs {len(frame)})"
        )
    segments, codes = np.unique(labels, return_inverse=True)
    columns = {name: _as_float(frame[name]) for name in numeric}
    texts = {name: _as_text(frame[name]) for name in categorical}
    etas = {name: eta_squared(values, codes, len(segments)) for name, values in columns.items()}
    ranked = sorted(etas, key=lambda name: (etas[name] is None, -(etas[name] or 0.0), name))
    chosen = ranked[:top]
    rows = len(labels)
    profiles = []
    for code, segment in enumerate(segments):
        in_segment = codes == code
        size = int(in_segment.sum())
        profiles.append(
            {
                "segment": segment.item() if isinstance(segment, np.generic) else segment,
                "rows": size,
                "share": size / rows,
                "features": [_feature(columns[name], in_segment, name) for name in chosen],
                "categories": [_category(text, in_segment, name) for name, text in texts.items()],
            }
        )
    return {
        "top_features": [{"feature": name, "eta_squared": etas[name]} for name in chosen],
        "segments": profiles,
    }

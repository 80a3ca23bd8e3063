"""Holdout evaluation of a binary classifier: decision threshold, metrics, calibration, importances.

Pure functions on labels ``y`` (0/1) and positive-class probabilities ``proba``; every number
returned is a plain Python float or int so the results go straight into JSON.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline


def _counts_at(
    y: np.ndarray, proba: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """(tp, fp, positives) when predicting positive for ``proba >= t``, for every t at once."""
    positive = np.sort(proba[y == 1])
    negative = np.sort(proba[y != 1])
    tp = len(positive) - np.searchsorted(positive, thresholds, side="left")
    fp = len(negative) - np.searchsorted(negative, thresholds, side="left")
    return tp, fp, len(positive)


def choose_threshold(
    y: np.ndarray,
    proba: np.ndarray,
    *,
    objective: Literal["f1", "cost"] = "f1",
    cost_fp: float = 1.0,
    cost_fn: float = 1.0,
) -> dict[str, float]:
    """The decision threshold (predict positive when ``proba >= threshold``) that maximises F1
    or minimises ``cost_fp·FP + cost_fn·FN`` on these predictions (the job passes the
    cross-validated ones).

    Candidates are the distinct probabilities plus 0.5; ties go to the threshold closest to
    0.5 (the untuned default), then to the higher one.
    """
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float)
    if len(y) == 0 or len(y) != len(proba):
        raise ValueError(f"need equally long, non-empty y and proba ({len(y)} vs {len(proba)})")
    candidates = np.unique(np.append(proba, 0.5))
    # One sorted count serves both objectives (and the extra 0.5 candidate), vectorised.
    tp, fp, positives = _counts_at(y, proba, candidates)
    fn = positives - tp
    if objective == "f1":
        denominator = 2 * tp + fp + fn
        # Integer ratios: equal F1 values compare exactly equal, so ties are real ties.
        score = np.divide(2 * tp, denominator, out=np.zeros(len(candidates)), where=denominator > 0)
        badness = -score
    elif objective == "cost":
        score = cost_fp * fp + cost_fn * fn
        badness = score
    else:
        raise ValueError(f"unknown threshold objective {objective!r}")
    best = np.lexsort((-candidates, np.abs(candidates - 0.5), badness))[0]
    predicted = tp[best] + fp[best]
    return {
        "threshold": float(candidates[best]),
        objective: float(score[best]),
        "precision": float(tp[best] / predicted) if predicted else 0.0,
        "recall": float(tp[best] / positives) if positives else 0.0,
    }


def calibration_table(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability table over ``bins`` uniform bins on [0, 1], empty bins left out.

    Binned exactly as ``sklearn.calibration.calibration_curve(strategy="uniform")`` (a value
    on an inner edge falls in the lower bin), so the two agree row for row.
    """
    y = np.asarray(y, dtype=float)
    proba = np.asarray(proba, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], proba)
    counts = np.bincount(ids, minlength=bins)
    sums = np.bincount(ids, weights=proba, minlength=bins)
    positives = np.bincount(ids, weights=y, minlength=bins)
    return [
        {
            "lower": float(edges[i]),
            "upper": float(edges[i + 1]),
            "count": int(counts[i]),
            "mean_predicted": float(sums[i] / counts[i]),
            "fraction_positive": float(positives[i] / counts[i]),
        }
        for i in range(bins)
        if counts[i]
    ]


def holdout_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, Any]:
    """Ranking, thresholded and probabilistic metrics of one holdout, with its confusion
    counts and calibration table. AUCs are None when the holdout holds a single class."""
    y = np.asarray(y).astype(int)
    proba = np.asarray(proba, dtype=float)
    predicted = (proba >= threshold).astype(int)
    both_classes = len(np.unique(y)) == 2
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    return {
        "roc_auc": float(roc_auc_score(y, proba)) if both_classes else None,
        "pr_auc": float(average_precision_score(y, proba)) if both_classes else None,
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "log_loss": float(log_loss(y, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y, proba, pos_label=1)),
        "positives": int(y.sum()),
        "rows": len(y),
        "base_rate": float(y.mean()),
        "threshold": float(threshold),
        "confusion": {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)},
        "calibration": calibration_table(y, proba),
    }


def _stratified_sample(y: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Sorted row positions of at most ``max_rows`` rows, each class in its share (at least
    one row of every class), so a rare positive class is not sampled away."""
    rng = np.random.default_rng(seed)
    picked = []
    for value in np.unique(y):
        rows = np.flatnonzero(y == value)
        take = min(len(rows), max(1, round(max_rows * len(rows) / len(y))))
        picked.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(picked))


def permutation_importances(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    scoring: str = "roc_auc",
    seed: int,
    n_repeats: int = 5,
    max_rows: int = 5000,
    stratify: bool = True,
) -> list[dict[str, float | str]]:
    """Drop in ``scoring`` when each raw input column is shuffled, highest first.

    Permuting the raw columns (the pipeline takes the DataFrame) gives one importance per
    column the user knows, not per one-hot or indicator output.
    """
    y = np.asarray(y)
    if len(X) > max_rows:
        if stratify:  # classes keep their shares; a regression target has no classes
            rows = _stratified_sample(y, max_rows, seed)
        else:
            rows = np.sort(np.random.default_rng(seed).choice(len(y), max_rows, replace=False))
        X, y = X.iloc[rows], y[rows]
    result = permutation_importance(
        pipeline, X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    found: list[dict[str, float | str]] = [
        {"feature": str(name), "mean": float(mean), "std": float(std)}
        for name, mean, std in zip(
            X.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(found, key=lambda item: -float(item["mean"]))

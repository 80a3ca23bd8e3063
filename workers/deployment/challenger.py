"""Champion/challenger: promote a retrained version only when it beats the champion on
recent labelled rows by a significant margin. Pure statistics, no I/O.

=============  ========================  ====================================  ==========
problem        inputs                    metric and test                       improvement
=============  ========================  ====================================  ==========
binary         positive-class scores     ROC AUC, paired DeLong (Sun & Xu)     chal - champ
multiclass     predicted labels          accuracy, paired bootstrap            chal - champ
regression     predictions               RMSE, paired bootstrap                champ - chal
clustering     -                         not_comparable (deploy by hand)       -
=============  ========================  ====================================  ==========

Rows where the label or either prediction is missing (None, NaN, ±inf) are dropped and
counted. Verdicts:

* ``insufficient_data`` (champion kept): fewer than ``min_rows`` rows remain, or for
  binary fewer than ``min_class_rows`` of either class;
* ``promote``: the one-sided (1 - alpha) lower confidence bound of the improvement is
  above ``min_improvement`` (DeLong: diff - z_(1-alpha)·se; bootstrap: the alpha-quantile
  of the resampled improvements);
* ``reject`` otherwise. ``ci_low``/``ci_high`` are two-sided at 1 - 2·alpha, so
  ``ci_low`` is that bound; ``p_value`` is one-sided against "no improvement".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

Problem = Literal["binary", "multiclass", "regression", "clustering"]
Verdict = Literal["promote", "reject", "insufficient_data", "not_comparable"]
Metric = Literal["roc_auc", "rmse", "accuracy"]
Test = Literal["delong", "paired_bootstrap"]
METRICS: dict[str, Metric] = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
BLOCK = 100  # bootstrap resamples drawn per vectorised block (BLOCK × n indices)


@dataclass(frozen=True)
class AucComparison:
    """Paired DeLong comparison of two ROC AUCs on the same rows."""

    champion: float
    challenger: float
    difference: float  # challenger - champion
    se: float
    ci_low: float
    ci_high: float
    p_value: float  # one-sided, H1: challenger > champion
    confidence: float
    covariance: tuple[tuple[float, float], tuple[float, float]]  # of (champion, challenger)


@dataclass(frozen=True)
class BootstrapComparison:
    """Paired bootstrap comparison of one metric; improvement > 0 means the challenger wins."""

    metric: Metric
    champion: float
    challenger: float
    improvement: float
    ci_low: float  # percentile interval at ``confidence``
    ci_high: float
    p_value: float  # (k + 1) / (B + 1), k = resamples with improvement <= 0
    n_resamples: int
    confidence: float


@dataclass(frozen=True)
class ChallengerDecision:
    """The verdict and the numbers behind it (see the module docstring for the rules)."""

    verdict: Verdict
    metric: Metric | None
    test: Test | None
    champion: float | None
    challenger: float | None
    improvement: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n: int
    dropped: int
    min_improvement: float
    alpha: float
    message: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict; non-finite floats become None."""
        return {
            key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in dataclasses.asdict(self).items()
        }


def auc_covariance(y_true: ArrayLike, *scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUCs of each score and DeLong's covariance matrix of them, by the midrank
    algorithm of Sun & Xu (2014): O(n log n) per score, ties counted as one half."""
    y = np.asarray(y_true)
    positive = y == 1
    if not np.all(positive | (y == 0)):
        raise ValueError("y_true must be 0/1")
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"need at least 2 rows of each class; got {m} positive, {n} negative")
    aucs, v10, v01 = [], [], []
    for score in scores:
        s = np.asarray(score, dtype=np.float64)
        x, w = s[positive], s[~positive]
        tz = stats.rankdata(np.concatenate([x, w]))
        tx, tw = stats.rankdata(x), stats.rankdata(w)
        # A positive's rank among all minus its rank among positives counts the negatives
        # below it (ties ½): its placement value V10; likewise V01 for each negative.
        v10.append((tz[:m] - tx) / n)
        v01.append(1.0 - (tz[m:] - tw) / m)
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
    s10 = np.atleast_2d(np.cov(np.vstack(v10)))
    s01 = np.atleast_2d(np.cov(np.vstack(v01)))
    return np.array(aucs), s10 / m + s01 / n


def delong_test(
    y_true: ArrayLike,
    score_champion: ArrayLike,
    score_challenger: ArrayLike,
    *,
    confidence: float = 0.95,
) -> AucComparison:
    """Paired DeLong test of challenger AUC - champion AUC: two-sided CI at ``confidence``
    and the one-sided p-value for H1: challenger > champion."""
    aucs, cov = auc_covariance(y_true, score_champion, score_challenger)
    diff = float(aucs[1] - aucs[0])
    se = math.sqrt(max(0.0, float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    # se == 0: identical rankings (diff 0), no evidence either way.
    p = float(stats.norm.sf(diff / se)) if se > 0 else float(diff <= 0)
    return AucComparison(
        champion=float(aucs[0]),
        challenger=float(aucs[1]),
        difference=diff,
        se=se,
        ci_low=diff - z * se,
        ci_high=diff + z * se,
        p_value=p,
        confidence=confidence,
        covariance=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
    )


def paired_bootstrap(
    y_true: ArrayLike,
    pred_champion: ArrayLike,
    pred_challenger: ArrayLike,
    metric: Literal["rmse", "accuracy"],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapComparison:
    """Both models scored on the same resampled rows; percentile CI at ``confidence``."""
    y, a, b = np.asarray(y_true), np.asarray(pred_champion), np.asarray(pred_challenger)
    if metric == "rmse":
        # Per-row squared errors: every resample is a gather and a mean.
        y = y.astype(np.float64)
        rows_a, rows_b = (a.astype(np.float64) - y) ** 2, (b.astype(np.float64) - y) ** 2
    elif metric == "accuracy":
        rows_a, rows_b = (a == y).astype(np.float64), (b == y).astype(np.float64)
    else:
        raise ValueError(f"metric must be 'rmse' or 'accuracy'; got {metric!r}")
    n = rows_a.size
    if n == 0 or n_resamples < 1:
        raise ValueError("need at least one row and one resample")

    def score(mean_a: np.ndarray, mean_b: np.ndarray) -> tuple[Any, Any, Any]:
        if metric == "rmse":
            ra, rb = np.sqrt(mean_a), np.sqrt(mean_b)
            return ra, rb, ra - rb
        return mean_a, mean_b, mean_b - mean_a

    champion, challenger, improvement = score(rows_a.mean(), rows_b.mean())
    rng = np.random.default_rng(seed)
    resampled = np.empty(n_resamples)
    for start in range(0, n_resamples, BLOCK):
        size = min(BLOCK, n_resamples - start)
        index = rng.integers(0, n, size=(size, n))
        resampled[start : start + size] = score(
            rows_a[index].mean(axis=1), rows_b[index].mean(axis=1)
        )[2]
    tail = (1 - confidence) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail])
    k = int(np.count_nonzero(resampled <= 0))
    return BootstrapComparison(
        metric, float(champion), float(challenger), float(improvement), float(low),
        float(high), (k + 1) / (n_resamples + 1), n_resamples, confidence,
    )  # fmt: skip


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fc":
        return ~np.isfinite(values)
    if values.dtype.kind == "O":
        return np.array(
            [v is None or (isinstance(v, float) and not math.isfinite(v)) for v in values],
            dtype=bool,
        )
    return np.zeros(values.shape, dtype=bool)


def _decision(
    verdict: Verdict, metric: Metric | None, message: str, n: int = 0, dropped: int = 0,
    min_improvement: float = 0.0, alpha: float = 0.05, test: Test | None = None,
    numbers: tuple[float, ...] = (math.nan,) * 6,
) -> ChallengerDecision:  # fmt: skip
    champion, challenger, improvement, low, high, p = (
        None if math.isnan(x) else x for x in numbers
    )
    return ChallengerDecision(
        verdict, metric, test, champion, challenger, improvement, low, high, p, n,
        dropped, min_improvement, alpha, message,
    )  # fmt: skip


def decide(
    problem: Problem,
    y_true: ArrayLike,
    champion: ArrayLike,
    challenger: ArrayLike,
    *,
    min_improvement: float = 0.0,
    alpha: float = 0.05,
    min_rows: int = 200,
    min_class_rows: int = 20,
    seed: int = 0,
    n_resamples: int = 1000,
) -> ChallengerDecision:
    """Promote, reject, or not enough data to say (see the module docstring)."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5); got {alpha}")
    if problem == "clustering":
        message = (
            "segmentation has no outcome to compare on; promote a version by hand with "
            "client.deploy"
        )
        return _decision("not_comparable", None, message, min_improvement=min_improvement,
                         alpha=alpha)  # fmt: skip
    if problem not in METRICS:
        raise ValueError(f"unknown problem {problem!r}")
    metric = METRICS[problem]
    y, a, b = np.asarray(y_true), np.asarray(champion), np.asarray(challenger)
    if not (y.ndim == a.ndim == b.ndim == 1 and y.size == a.size == b.size):
        raise ValueError(f"need three 1-D arrays of one length; got {y.shape, a.shape, b.shape}")
    keep = ~(_missing(y) | _missing(a) | _missing(b))
    y, a, b = y[keep], a[keep], b[keep]
    n, dropped = int(y.size), int((~keep).sum())
    dropped_note = f" ({dropped:,} with a missing value dropped)" if dropped else ""

    def insufficient(what: str, needed: str) -> ChallengerDecision:
        message = (
            f"only {what} recent labelled rows{dropped_note}; at least {needed} are needed "
            "to compare: the champion is kept"
        )
        return _decision("insufficient_data", metric, message, n, dropped, min_improvement, alpha)

    if n < min_rows:
        return insufficient(f"{n:,}", f"{min_rows:,}")
    if problem == "binary":
        y = y.astype(np.float64)
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("binary labels must be 0/1")
        positives = int(np.count_nonzero(y == 1))
        per_class = max(min_class_rows, 2)  # DeLong's variance needs two of each
        if min(positives, n - positives) < per_class:
            return insufficient(
                f"{positives:,} positive and {n - positives:,} negative",
                f"{per_class:,} of each class",
            )
        auc = delong_test(y, a, b, confidence=1 - 2 * alpha)
        test: Test = "delong"
        numbers = (auc.champion, auc.challenger, auc.difference, auc.ci_low, auc.ci_high,
                   auc.p_value)  # fmt: skip
    else:
        boot = paired_bootstrap(y, a, b, "rmse" if problem == "regression" else "accuracy",
                                n_resamples, seed, confidence=1 - 2 * alpha)  # fmt: skip
        test = "paired_bootstrap"
        numbers = (boot.champion, boot.challenger, boot.improvement, boot.ci_low,
                   boot.ci_high, boot.p_value)  # fmt: skip
    value_champion, value_challenger, improvement, low, high, p_value = numbers
    verdict: Verdict = "promote" if low > min_improvement else "reject"
    # RMSE is on the target's scale: four significant figures of the champion's.
    scale = abs(value_champion) if metric == "rmse" else 1.0
    places = 3 if scale == 0 else max(0, 3 - math.floor(math.log10(scale)))

    def fmt(value: float, sign: str = "+") -> str:
        return f"{value:{sign}.{places}f}"

    label = {"roc_auc": "ROC AUC", "rmse": "RMSE", "accuracy": "accuracy"}[metric]
    p_text = "p < 0.0001" if p_value < 0.0001 else f"p = {p_value:.4f}"
    needs = f" (needs the lower bound above {fmt(min_improvement)})" if min_improvement else ""
    message = (
        f"challenger {label} {fmt(value_challenger, '')} vs champion "
        f"{fmt(value_champion, '')}: {'improvement ' if metric == 'rmse' else ''}"
        f"{fmt(improvement)} [{fmt(low)}, {fmt(high)}], {p_text} on {n:,} recent "
        f"labelled rows{dropped_note}: {verdict}{needs if verdict == 'reject' else ''}"
    )
    return _decision(verdict, metric, message, n, dropped, min_improvement, alpha, test, numbers)

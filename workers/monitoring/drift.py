"""Data drift and prediction drift: a reference window against a current window.

Per feature (``numeric_drift``, ``categorical_drift``):

* **numeric**: two-sample Kolmogorov-Smirnov test (statistic and p-value equal to
  ``scipy.stats.ks_2samp``, method 'auto'); effect size the Wasserstein-1 distance divided
  by a scale of the reference: its IQR, else its median absolute deviation, else its
  standard deviation (``drift_numeric.reference_scale``; a constant reference has no scale
  and no effect size: it is then judged by its PSI level instead);
* **categorical**: chi-square test of the 2 x k table of counts (``drift_categorical``:
  top ``max_levels`` levels + "other", unseen levels pooled, empty columns dropped);
  effect size the Jensen-Shannon distance (base 2) of the shares;
* **PSI** beside both, bins fixed from the reference (``workers.monitoring.psi``: one bin
  per value for low-cardinality or mostly constant columns, quantile bins otherwise; for
  categoricals the table's columns), empty bins floored at ``psi.DEFAULT_FLOOR`` = 1e-4
  (see psi.py). Reported as a level: < ``psi_moderate`` "none", < ``psi_major`` "moderate",
  else "major". PSI is reported, it does not decide.

**When a feature drifts**: its Benjamini-Hochberg-adjusted p-value (over all features of
the check that have one) is < ``alpha`` AND its effect size is >= the threshold
(``wasserstein`` for numeric, ``js`` for categorical). The p-value alone flags trivial
shifts in large windows (a 0.01 sigma shift has p < 1e-6 with 1M rows); the effect size
alone flags noise in small windows (in a 30-row window the noise alone has a normalised
Wasserstein distance of about 0.1). Both must agree. Defaults: alpha 0.05, normalised
Wasserstein 0.1 (a tenth of the reference IQR: about a 0.13 sigma shift of a normal), JS
distance 0.1. What JS 0.1 means for shares: a two-level column moving from 50/50 to
38/62 or from 70/30 to 58/42 (a 12-point move), but a 5-point move only for a level with
at most about 2% of the rows (2% -> 7%: 0.105; 30% -> 35%: 0.045; 50% -> 55%: 0.043).
So with the default a 5-point move of a common level is never flagged, whatever the
window size; a monitor that must see those needs ``js`` of about 0.03 (power measured in
``benchmarks/drift_speed.py``).

**Not enough data**: a feature with fewer than ``min_rows`` (30) non-missing values in
either window, an all-missing column or a reference column absent from the current
window, gets status "insufficient_data": no test, no drift claimed, the missing shares
and counts reported. ``drifted_share`` counts only the features with enough data.

Non-finite numeric values (NaN, +-inf) and missing labels count as missing.

Speed: the reference can be prepared once (``prepare_reference``: numeric columns sorted,
PSI bins and scales fixed, categorical levels counted and capped) and cached by a
monitoring worker; ``data_drift`` accepts it in place of the reference frame. Columns run
two at a time in threads (the numeric kernels release the GIL) when the window has at
least ``PARALLEL_MIN_ROWS`` rows; one after the other below that.

Prediction drift (``prediction_drift``) is the numeric path on the score distribution, as
a single test (its adjusted p-value is its p-value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from workers.monitoring.drift_categorical import (
    CategoricalReference,
    chi_square,
    compare_categorical,
    js_distance,
    prepare_categorical,
)
from workers.monitoring.drift_numeric import (
    NumericReference,
    compare_numeric,
    prepare_numeric,
    sorted_finite_padded,
)
from workers.monitoring.psi import DEFAULT_BINS, DEFAULT_FLOOR

Kind = Literal["numeric", "categorical"]
PsiLevel = Literal["none", "moderate", "major"]
Status = Literal["ok", "drifted", "insufficient_data"]
DEFAULT_WORKERS = 2
# Below this many current rows a column takes well under a millisecond and threads only
# add hand-offs (two single-process monitoring workers sweeping 10,000-row windows ran
# 2 threads each on 2 cores).
PARALLEL_MIN_ROWS = 100_000


@dataclass(frozen=True)
class DriftThresholds:
    """Decision thresholds (see the module docstring)."""

    alpha: float = 0.05  # on Benjamini-Hochberg-adjusted p-values
    wasserstein: float = 0.1  # Wasserstein / reference scale (IQR, MAD or std)
    js: float = 0.1  # Jensen-Shannon distance, base 2
    psi_moderate: float = 0.1
    psi_major: float = 0.25
    max_levels: int = 50  # categorical levels kept; the rest pooled into "other"
    min_rows: int = 30  # non-missing rows needed in each window
    psi_bins: int = DEFAULT_BINS

    def psi_level(self, value: float | None) -> PsiLevel | None:
        if value is None:
            return None
        if value >= self.psi_major:
            return "major"
        return "moderate" if value >= self.psi_moderate else "none"


DEFAULT_THRESHOLDS = DriftThresholds()


def _finite_or_none(value: Any) -> Any:
    """JSON-able: NaN and +-inf become None, numpy scalars plain Python, recursively."""
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_finite_or_none(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class FeatureDrift:
    """The drift verdict and statistics of one feature (or of the score)."""

    name: str
    kind: Kind
    test: Literal["ks", "chi_square"]
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None  # Benjamini-Hochberg, set by data_drift
    effect: float | None
    effect_name: Literal["wasserstein_norm", "js_distance"]
    psi: float | None
    psi_level: PsiLevel | None
    drifted: bool
    status: Status
    n_reference: int  # non-missing rows
    n_current: int
    missing_reference: float  # shares of rows missing
    missing_current: float
    unseen_categories: list[str] = field(default_factory=list)
    missing_categories: list[str] = field(default_factory=list)
    # {"edges": inner PSI edges} or {"labels": [...]}, with "reference" and "current"
    # shares per bin; numeric bins are (-inf, e0), [e0, e1), ..., [e_last, inf).
    histogram: dict[str, Any] = field(default_factory=dict)
    scale_name: Literal["iqr", "mad", "std"] | None = None  # numeric effect's scale
    reason: str | None = None  # why the data is insufficient

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (no NaN or infinity: those become null)."""
        return _finite_or_none(asdict(self))


@dataclass(frozen=True)
class DataDrift:
    """All features of one check; ``features`` drifted first, then by effect size."""

    features: tuple[FeatureDrift, ...]
    drifted: bool  # any feature drifted
    drifted_share: float  # of the features with enough data
    thresholds: DriftThresholds = DriftThresholds()

    def to_json(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drifted_share": self.drifted_share,
            "n_features": len(self.features),
            "n_drifted": sum(f.drifted for f in self.features),
            "n_insufficient": sum(f.status == "insufficient_data" for f in self.features),
            "thresholds": _finite_or_none(asdict(self.thresholds)),
            "features": [f.to_json() for f in self.features],
        }


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1), in the input
    order; equal to ``scipy.stats.false_discovery_control(p, method='bh')``."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if p.size == 0:
        return p.copy()
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def _psi_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of psi.py over given bins: shares floored at DEFAULT_FLOOR, not renormalised."""
    r = np.maximum(reference / reference.sum(), DEFAULT_FLOOR)
    c = np.maximum(current / current.sum(), DEFAULT_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [0.0] * counts.size if total == 0 else (counts / total).tolist()


def _decide(feature: FeatureDrift, p: float | None, thresholds: DriftThresholds) -> FeatureDrift:
    """Set ``drifted`` and ``status`` from the (adjusted) p-value ``p`` and the effect."""
    if feature.status == "insufficient_data" or p is None:
        return replace(feature, drifted=False)
    if feature.effect is not None:
        limit = thresholds.wasserstein if feature.kind == "numeric" else thresholds.js
        large = feature.effect >= limit
    else:  # constant reference: no scale, so the PSI level stands in for the effect
        large = feature.psi is not None and feature.psi >= thresholds.psi_moderate
    drifted = bool(p < thresholds.alpha and large)
    return replace(feature, drifted=drifted, status="drifted" if drifted else "ok")


def _as_float_array(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
            values.dtype
        ):
            values = pd.to_numeric(values, errors="coerce")
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64).ravel()


def _numeric(
    name: str,
    reference: NumericReference,
    current: Any,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    raw = _as_float_array(current)
    cur = sorted_finite_padded(raw)
    n_ref, n_cur = reference.n, int(cur.size - 1)
    base = FeatureDrift(
        name=name,
        kind="numeric",
        test="ks",
        statistic=None,
        p_value=None,
        p_adjusted=None,
        effect=None,
        effect_name="wasserstein_norm",
        psi=None,
        psi_level=None,
        drifted=False,
        status="insufficient_data",
        n_reference=n_ref,
        n_current=n_cur,
        missing_reference=reference.missing_share,
        missing_current=0.0 if raw.size == 0 else 1.0 - n_cur / raw.size,
        scale_name=reference.scale_name,
    )
    reason = _too_few(n_ref, n_cur, thresholds)
    if reason:
        return replace(base, reason=reason)
    result = compare_numeric(reference, cur)
    value = _psi_from_counts(reference.counts, result.current_counts)
    effect = None if reference.scale is None else result.wasserstein / reference.scale
    feature = replace(
        base,
        statistic=result.statistic,
        p_value=result.p_value,
        effect=effect,
        psi=value,
        psi_level=thresholds.psi_level(value),
        status="ok",
        histogram={
            "edges": reference.inner_edges.tolist(),
            "reference": _shares(reference.counts),
            "current": _shares(result.current_counts),
        },
    )
    return _decide(feature, feature.p_value, thresholds)


def _too_few(n_ref: int, n_cur: int, thresholds: DriftThresholds) -> str | None:
    if n_cur == 0:
        return "no non-missing values in the current window"
    if n_ref == 0:
        return "no non-missing values in the reference"
    if min(n_ref, n_cur) < thresholds.min_rows:
        return f"fewer than {thresholds.min_rows} non-missing values in a window"
    return None


def _categorical(
    name: str,
    reference: CategoricalReference,
    current: Any,
    thresholds: DriftThresholds,
) -> FeatureDrift:
    table = compare_categorical(reference, current, max_listed=thresholds.max_levels)
    n_ref, n_cur = reference.n, table.n_current
    base = FeatureDrift(
        name=name,
        kind="categorical",
        test="chi_square",
        statistic=None,
        p_value=None,
        p_adjusted=None,
        effect=None,
        effect_name="js_distance",
        psi=None,
        psi_level=None,
        drifted=False,
        status="insufficient_data",
        n_reference=n_ref,
        n_current=n_cur,
        missing_reference=reference.missing_share,
        missing_current=(
            0.0 if table.n_current_total == 0 else 1.0 - n_cur / table.n_current_total
        ),
        unseen_categories=table.unseen,
        missing_categories=table.missing if n_cur else [],
    )
    reason = _too_few(n_ref, n_cur, thresholds)
    if reason:
        return replace(base, reason=reason)
    statistic, p = chi_square(table.reference_counts, table.current_counts)
    value = _psi_from_counts(table.reference_counts, table.current_counts)
    feature = replace(
        base,
        statistic=statistic,
        p_value=p,
        effect=js_distance(table.reference_counts, table.current_counts),
        psi=value,
        psi_level=thresholds.psi_level(value),
        status="ok",
        histogram={
            "labels": table.labels,
            "reference": _shares(table.reference_counts),
            "current": _shares(table.current_counts),
        },
    )
    return _decide(feature, feature.p_value, thresholds)


def numeric_drift(
    name: str,
    reference: np.ndarray | NumericReference,
    current: np.ndarray,
    thresholds: DriftThresholds = DriftThresholds(),
) -> FeatureDrift:
    """KS + normalised Wasserstein + PSI of one numeric feature. ``p_adjusted`` is left
    None; ``drifted``/``status`` use the unadjusted p-value (one test), and ``data_drift``
    recomputes them from the adjusted one."""
    prepared = (
        reference
        if isinstance(reference, NumericReference)
        else prepare_numeric(_as_float_array(reference), thresholds.psi_bins)
    )
    return _numeric(name, prepared, current, thresholds)


def categorical_drift(
    name: str,
    reference: Sequence[Any] | np.ndarray | pd.Series | CategoricalReference,
    current: Sequence[Any] | np.ndarray | pd.Series,
    thresholds: DriftThresholds = DriftThresholds(),
) -> FeatureDrift:
    """Chi-square + Jensen-Shannon + PSI of one categorical feature (``p_adjusted`` None,
    as ``numeric_drift``)."""
    prepared = (
        reference
        if isinstance(reference, CategoricalReference)
        else prepare_categorical(reference, thresholds.max_levels)
    )
    return _categorical(name, prepared, current, thresholds)


def prediction_drift(
    reference_scores: np.ndarray | NumericReference,
    current_scores: np.ndarray,
    thresholds: DriftThresholds = DriftThresholds(),
) -> FeatureDrift:
    """Drift of the score distribution: the numeric path (KS + PSI) as a single test."""
    feature = numeric_drift("score", reference_scores, current_scores, thresholds)
    return _decide(replace(feature, p_adjusted=feature.p_value), feature.p_value, thresholds)


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True, eq=False)
class PreparedReference:
    """A reference frame prepared once for many checks (a monitoring worker caches it).

    The PSI bins and the categorical cap (``max_levels``) are those of the thresholds it
    was prepared with."""

    columns: Mapping[str, ColumnReference]
    kinds: Mapping[str, Kind]
    n_rows: int
    psi_bins: int
    max_levels: int


def infer_kinds(frame: pd.DataFrame) -> dict[str, Kind]:
    """numeric for numeric dtypes, categorical for everything else (bool included)."""
    kinds: dict[str, Kind] = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        kinds[str(name)] = "numeric" if numeric else "categorical"
    return kinds


def _checked_kinds(frame: pd.DataFrame, kinds: Mapping[str, str] | None) -> dict[str, Kind]:
    inferred = infer_kinds(frame)
    for name, kind in (kinds or {}).items():
        if name not in inferred:
            raise ValueError(f"kinds names {name!r}, which is not a reference column")
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"kind of {name!r} must be numeric or categorical; got {kind!r}")
        inferred[name] = kind  # type: ignore[assignment]
    return inferred


def _prepare_column(series: pd.Series, kind: Kind, thresholds: DriftThresholds) -> ColumnReference:
    if kind == "numeric":
        return prepare_numeric(_as_float_array(series), thresholds.psi_bins)
    return prepare_categorical(series, thresholds.max_levels)


def prepare_reference(
    reference: pd.DataFrame,
    *,
    kinds: Mapping[str, str] | None = None,
    thresholds: DriftThresholds = DriftThresholds(),
    workers: int = DEFAULT_WORKERS,
) -> PreparedReference:
    """Sort, bin and count every reference column once (see ``PreparedReference``)."""
    checked = _checked_kinds(reference, kinds)
    names = list(checked)
    frame = reference.set_axis([str(c) for c in reference.columns], axis=1)

    def prepare(name: str) -> ColumnReference:
        return _prepare_column(frame[name], checked[name], thresholds)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        columns = dict(zip(names, pool.map(prepare, names), strict=True))
    return PreparedReference(
        columns=columns,
        kinds=checked,
        n_rows=len(reference),
        psi_bins=thresholds.psi_bins,
        max_levels=thresholds.max_levels,
    )


def _absent(name: str, kind: Kind, reference: ColumnReference) -> FeatureDrift:
    """A reference column missing from the current window (a schema break)."""
    numeric = kind == "numeric"
    return FeatureDrift(
        name=name,
        kind=kind,
        test="ks" if numeric else "chi_square",
        statistic=None,
        p_value=None,
        p_adjusted=None,
        effect=None,
        effect_name="wasserstein_norm" if numeric else "js_distance",
        psi=None,
        psi_level=None,
        drifted=False,
        status="insufficient_data",
        n_reference=reference.n,
        n_current=0,
        missing_reference=reference.missing_share,
        missing_current=1.0,
        reason="column absent from the current window",
    )


def _sort_key(feature: FeatureDrift) -> tuple[int, int, float, str]:
    effect = feature.effect if feature.effect is not None else -math.inf
    insufficient = feature.status == "insufficient_data"
    return (not feature.drifted, insufficient, -effect, feature.name)


def data_drift(
    reference: pd.DataFrame | PreparedReference,
    current: pd.DataFrame,
    *,
    kinds: Mapping[str, str] | None = None,
    thresholds: DriftThresholds = DriftThresholds(),
    workers: int = DEFAULT_WORKERS,
) -> DataDrift:
    """Drift of every reference column (see the module docstring).

    ``kinds`` overrides the dtype-based kind of some columns (ignored for a prepared
    reference, which has its kinds). Current columns that the reference lacks are ignored;
    reference columns that the current window lacks are reported as insufficient data.
    Benjamini-Hochberg runs over the features that have a p-value.
    """
    prepared = reference if isinstance(reference, PreparedReference) else None
    if prepared is not None:
        if (prepared.psi_bins, prepared.max_levels) != (thresholds.psi_bins, thresholds.max_levels):
            raise ValueError(
                "the reference was prepared with other psi_bins/max_levels than these thresholds"
            )
        names = list(prepared.columns)
        kinds_used = dict(prepared.kinds)
    else:
        assert isinstance(reference, pd.DataFrame)
        kinds_used = _checked_kinds(reference, kinds)
        names = list(kinds_used)
        ref_frame = reference.set_axis([str(c) for c in reference.columns], axis=1)
    cur_frame = current.set_axis([str(c) for c in current.columns], axis=1)

    def check(name: str) -> FeatureDrift:
        kind = kinds_used[name]
        column = (
            prepared.columns[name]
            if prepared is not None
            else _prepare_column(ref_frame[name], kind, thresholds)
        )
        if name not in cur_frame.columns:
            return _absent(name, kind, column)
        if isinstance(column, NumericReference):
            return _numeric(name, column, cur_frame[name], thresholds)
        return _categorical(name, column, cur_frame[name], thresholds)

    # Numeric columns first: they are the long tasks, so the two threads end together.
    order = sorted(names, key=lambda n: kinds_used[n] != "numeric")
    if workers > 1 and len(cur_frame) >= PARALLEL_MIN_ROWS:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(check, order))
    else:
        results = [check(name) for name in order]
    tested = [i for i, f in enumerate(results) if f.p_value is not None]
    adjusted = benjamini_hochberg([results[i].p_value for i in tested])  # type: ignore[misc]
    for i, p in zip(tested, adjusted, strict=True):
        feature = replace(results[i], p_adjusted=float(p))
        results[i] = _decide(feature, float(p), thresholds)
    features = tuple(sorted(results, key=_sort_key))
    with_data = [f for f in features if f.status != "insufficient_data"]
    n_drifted = sum(f.drifted for f in with_data)
    return DataDrift(
        features=features,
        drifted=n_drifted > 0,
        drifted_share=n_drifted / len(with_data) if with_data else 0.0,
        thresholds=thresholds,
    )

"""From CleanParams and the dataset's column kinds to an sklearn Pipeline (no data needed).

Steps, in order, each omitted when it has nothing to do: normalize_categories -> impute ->
cap_outliers -> flag_outliers -> robust_scale; with none, a passthrough so that the
artifact always exists. Whatever the config gets wrong that shows without the data is
refused here with a CleaningConfigError; only all-missing columns wait for ``fit``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from api_client.quality_params import CleanParams, ImputeRule, MissingConfig, OutlierConfig
from workers.preprocessing.cleaning.base import (
    CleaningConfigError,
    FrameTransformer,
    Passthrough,
    describe_columns,
)
from workers.preprocessing.cleaning.categories import CategoryNormalizer
from workers.preprocessing.cleaning.imputers import ColumnRule, MissingValueImputer, check_rule
from workers.preprocessing.cleaning.outliers import (
    IsolationForestFlagger,
    OutlierCapper,
    RobustScaling,
)
from workers.preprocessing.columns import ColumnKind

KNN_LIMIT_SETTING = "CIPML_CLEAN_KNN_MAX_ROWS"
Kinds = dict[str, ColumnKind]
Step = tuple[str, FrameTransformer, dict[str, Any]]


@dataclass(frozen=True)
class CleaningPlan:
    """The unfitted pipeline, the columns whose missing rows the job drops (rule ``drop``),
    and a JSON-able description of each pipeline step (name, columns, parameters)."""

    pipeline: Pipeline
    drop_missing_columns: list[str]
    steps: list[dict[str, Any]]


def build_cleaning_pipeline(
    params: CleanParams, kinds: Kinds, n_rows: int, knn_max_rows: int
) -> CleaningPlan:
    """The cleaning plan of ``params`` for a dataset with these column kinds and rows.

    ``exclude`` wins: an excluded column is never changed nor used as a predictor, even
    where the config also names it elsewhere.
    """
    _check_named_columns(params, kinds)
    excluded = set(params.exclude)
    usable = {c: k for c, k in kinds.items() if c not in excluded}
    rules, drops = _imputation_rules(params.missing, usable)
    knn = [c for c, rule in rules.items() if rule["strategy"] == "knn"]
    if knn and n_rows > knn_max_rows:
        raise CleaningConfigError(
            "input_too_large",
            f"strategy 'knn' (columns {describe_columns(knn)}) is limited to {knn_max_rows} "
            f"rows ({KNN_LIMIT_SETTING}) and the dataset has {n_rows}; use 'iterative' or "
            "'median' instead",
        )
    indicators = [f"{c}__was_missing" for c, rule in rules.items() if rule.get("indicator")]
    _check_new_columns(indicators, kinds)
    candidates = [
        _normalize_step(params, usable),
        _impute_step(params, rules, usable, knn_max_rows),
        _cap_step(params.outliers, usable),
        _flag_step(params, usable, [*kinds, *indicators]),
        _scale_step(params.outliers, usable),
    ]
    steps = [step for step in candidates if step is not None]
    if not steps:
        steps = [("passthrough", Passthrough(), {"columns": []})]
    return CleaningPlan(
        pipeline=Pipeline([(name, transformer) for name, transformer, _ in steps]),
        drop_missing_columns=drops,
        steps=[{"name": name, **described} for name, _, described in steps],
    )


def fit_transform_frame(
    plan: CleaningPlan, train: pd.DataFrame, full: pd.DataFrame
) -> pd.DataFrame:
    """Fit every step on the training rows, then clean all rows (a new DataFrame)."""
    cleaned: pd.DataFrame = plan.pipeline.fit(train).transform(full)
    return cleaned


def _normalize_step(params: CleanParams, usable: Kinds) -> Step | None:
    if params.normalize_categories is True:
        columns = [c for c, kind in usable.items() if kind == "categorical"]
    else:
        columns = _kept(params.normalize_categories or [], usable)
        _require(columns, usable, "categorical", "normalize_categories")
    if not columns:
        return None
    return "normalize_categories", CategoryNormalizer(columns), {"columns": columns}


def _imputation_rules(
    missing: MissingConfig, usable: Kinds
) -> tuple[dict[str, ColumnRule], list[str]]:
    """Each column's rule (per-column, else the default of its kind) and the ``drop`` columns."""
    rules: dict[str, ColumnRule] = {}
    drops: list[str] = []
    for column, kind in usable.items():
        rule: ImputeRule | None
        if column in missing.columns:
            rule, where = missing.columns[column], f"missing.columns[{column!r}]"
        elif kind == "timestamp":  # only ever filled when named with constant/drop
            continue
        elif kind == "numeric":
            rule, where = missing.numeric, "missing.numeric"
        else:
            rule, where = missing.categorical, "missing.categorical"
        if rule is None:
            continue
        try:
            check_rule(column, kind, rule.strategy, rule.value)
        except CleaningConfigError as error:
            raise CleaningConfigError(error.code, f"{where}: {error}") from None
        if rule.strategy == "drop":
            drops.append(column)
            continue
        plain: ColumnRule = {"strategy": rule.strategy, "indicator": rule.indicator}
        if rule.value is not None:
            plain["value"] = rule.value
        if rule.by is not None:
            plain["by"] = rule.by
        rules[column] = plain
    return rules, drops


def _impute_step(
    params: CleanParams, rules: dict[str, ColumnRule], usable: Kinds, knn_max_rows: int
) -> Step | None:
    if not rules:
        return None
    missing = params.missing
    strategies = {rule["strategy"] for rule in rules.values()}
    iterative = [c for c, rule in rules.items() if rule["strategy"] == "iterative"]
    # The other (not excluded) numeric columns help predict the iterative ones.
    predictors = [c for c, k in usable.items() if k == "numeric" and c not in iterative]
    predictors = predictors if iterative else []
    imputer = MissingValueImputer(
        rules,
        knn_neighbors=missing.knn_neighbors,
        knn_fit_max_rows=knn_max_rows,
        iterative_max_iter=missing.iterative_max_iter,
        iterative_predictors=predictors,
        seed=params.seed,
    )
    described: dict[str, Any] = {
        "columns": list(rules),
        "rules": {c: dict(r) for c, r in rules.items()},
    }
    if "knn" in strategies:
        described |= {"knn_neighbors": missing.knn_neighbors, "knn_fit_max_rows": knn_max_rows}
    if iterative:
        described |= {
            "iterative_max_iter": missing.iterative_max_iter,
            "iterative_predictors": predictors,
        }
    if strategies & {"knn", "iterative"}:
        described["seed"] = params.seed
    return "impute", imputer, described


def _cap_step(outliers: OutlierConfig, usable: Kinds) -> Step | None:
    if outliers.cap is None:
        return None
    columns = _default_numeric(outliers.columns, usable, "outliers.columns")
    if not columns:
        return None
    low, high = outliers.quantiles
    capper = OutlierCapper(columns, outliers.cap, outliers.iqr_k, (low, high))
    bounds = {"iqr_k": outliers.iqr_k} if outliers.cap == "iqr" else {"quantiles": [low, high]}
    return "cap_outliers", capper, {"columns": columns, "method": outliers.cap, **bounds}


def _flag_step(params: CleanParams, usable: Kinds, existing: list[str]) -> Step | None:
    forest = params.outliers.isolation_forest
    if forest is None:
        return None
    columns = _default_numeric(forest.columns, usable, "outliers.isolation_forest.columns")
    if not columns:
        return None
    _check_new_columns([forest.flag_column], existing)
    flagger = IsolationForestFlagger(columns, forest.contamination, forest.flag_column, params.seed)
    described = {
        "columns": columns,
        "contamination": forest.contamination,
        "flag_column": forest.flag_column,
        "seed": params.seed,
    }
    return "flag_outliers", flagger, described


def _scale_step(outliers: OutlierConfig, usable: Kinds) -> Step | None:
    columns = _kept(outliers.robust_scale, usable)
    _require(columns, usable, "numeric", "outliers.robust_scale")
    return ("robust_scale", RobustScaling(columns), {"columns": columns}) if columns else None


def _default_numeric(named: list[str] | None, usable: Kinds, where: str) -> list[str]:
    """The named (not excluded) columns, which must be numeric; default: every numeric one."""
    if named is None:
        return [c for c, kind in usable.items() if kind == "numeric"]
    columns = _kept(named, usable)
    _require(columns, usable, "numeric", where)
    return columns


def _kept(named: Iterable[str], usable: Kinds) -> list[str]:
    return [c for c in dict.fromkeys(named) if c in usable]


def _require(columns: list[str], kinds: Kinds, wanted: ColumnKind, where: str) -> None:
    for column in columns:
        if kinds[column] != wanted:
            raise CleaningConfigError(
                "column_type_mismatch",
                f"{where}: the step needs {wanted} columns, but {column!r} is {kinds[column]}",
            )


def _check_new_columns(added: list[str], existing: Iterable[str]) -> None:
    clashes = [name for name in added if name in set(existing)]
    if clashes:
        raise CleaningConfigError(
            "column_exists",
            f"the dataset already has column(s) {clashes} that cleaning would add; rename "
            "outliers.isolation_forest.flag_column or turn the missing-value indicator off",
        )


def _check_named_columns(params: CleanParams, kinds: Kinds) -> None:
    missing, outliers = params.missing, params.outliers
    rules = [missing.numeric, missing.categorical, *missing.columns.values()]
    named = [
        *missing.columns,
        *(rule.by for rule in rules if rule is not None and rule.by is not None),
        *(outliers.columns or []),
        *outliers.robust_scale,
        *(outliers.isolation_forest.columns or [] if outliers.isolation_forest else []),
        *params.key_columns,
        *([params.fit_on.time_column] if params.fit_on else []),
        *params.exclude,
        *(params.normalize_categories if isinstance(params.normalize_categories, list) else []),
    ]
    unknown = [c for c in dict.fromkeys(named) if c not in kinds]
    if not unknown:
        return
    close = [m for c in unknown for m in difflib.get_close_matches(c, list(kinds), n=2)]
    hint = f" (did you mean {list(dict.fromkeys(close))}?)" if close else ""
    raise CleaningConfigError(
        "column_missing",
        f"the clean params name column(s) {unknown} that the dataset does not have{hint}; "
        f"its columns: {describe_columns(list(kinds))}",
    )

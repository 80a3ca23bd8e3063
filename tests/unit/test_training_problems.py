"""The four problems end to end on small real slices (bank marketing, CDNOW), their refusals,
feature selection inside the folds, the preprocessing choices and the ensemble rule."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from api_client.train_params import TrainParams
from workers.training.cross_validation import CVResult
from workers.training.data import setup_for
from workers.training.ensembles import RULE, choose, top_distinct_configs, voting_cv
from workers.training.errors import TrainingInputError
from workers.training.families import config_of, presets_of
from workers.training.fitting import fit_segmentation, fit_supervised
from workers.training.inputs import SplitPlan, TrainingData, prepare_training
from workers.training.objective import direction_of, make_objective, make_sampler
from workers.training.pipeline import (
    MIN_CATEGORY_ROWS,
    ModelSpec,
    build_pipeline,
    selected_features,
)
from workers.training.splits import make_split

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATA = Path(__file__).resolve().parents[2] / "data"
BANK_NUMERIC = ["age", "balance", "day", "campaign", "pdays", "previous"]
CDNOW_CUTOFF = pd.Timestamp("1997-10-01")
HORIZON = pd.Timedelta(weeks=39)
PLAN = SplitPlan(folds=3, holdout=0.2)
LR = {
    "family": "logistic_regression",
    "lr_C": 1.0,
    "lr_class_weight": "none",
    "prep_scaling": "standard",
    "prep_interactions": 0,
    "prep_encoding": "onehot",
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """OpenMP threads of histogram boosting spin against each other on a small CI box."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def bank() -> pd.DataFrame:
    """1,500 rows of bank marketing: y01 (11 % yes) and poutcome (4 classes) as targets."""
    frame = pd.read_parquet(DATA / "bank_marketing_dated.parquet")
    frame = frame.sample(1500, random_state=0).reset_index(drop=True)
    return frame.drop(columns=["duration", "date", "period", "y"])


@pytest.fixture(scope="module")
def clv_table() -> pd.DataFrame:
    """One row per CDNOW customer (2,000 of them): what they bought before 1997-10-01 and
    what they spent in the 39 weeks after it (zero for about two thirds)."""
    tx = pd.read_parquet(DATA / "cdnow_transactions.parquet")
    chosen = pd.Series(tx["customer_id"].unique()).sample(2000, random_state=0)
    tx = tx[tx["customer_id"].isin(chosen)]
    before = tx[tx["date"] < CDNOW_CUTOFF].groupby("customer_id")
    after = tx[(tx["date"] >= CDNOW_CUTOFF) & (tx["date"] < CDNOW_CUTOFF + HORIZON)]
    table = pd.DataFrame(
        {
            "recency_days": (CDNOW_CUTOFF - before["date"].max()).dt.days,
            "frequency": before["date"].nunique(),
            "monetary_sum": before["dollar_value"].sum(),
            "monetary_mean": before["dollar_value"].mean(),
            "tenure_days": (CDNOW_CUTOFF - before["date"].min()).dt.days,
        }
    )
    spend = after.groupby("customer_id")["dollar_value"].sum()
    table["spend_next"] = spend.reindex(table.index, fill_value=0.0)
    return table.reset_index()


def params_of(model_type: str, **fields: Any) -> TrainParams:
    raw: dict[str, Any] = {
        "dataset_id": 1,
        "model_name": "m",
        "model_type": model_type,
        "validation": {"folds": 3},
        "ensemble": {"methods": []},
        **fields,
    }
    raw["optimization"] = {"n_trials": 3, "strategy": "random", **raw.get("optimization", {})}
    return TrainParams.model_validate(raw)


def prepared(frame: pd.DataFrame, params: TrainParams) -> TrainingData:
    return prepare_training(
        frame,
        problem=params.problem,
        target=params.target,
        exclude=list(params.exclude),
        features=None,
        plan=SplitPlan(strategy=params.strategy, folds=3, holdout=0.2),
        seed=params.seed,
        rare_classes=params.rare_classes,
        max_features=params.selection.max_features,
    )


def train(frame: pd.DataFrame, params: TrainParams) -> tuple[TrainingData, optuna.Study, dict]:
    """prepare, a 3-trial random in-memory study, then the job's final fit."""
    data = prepared(frame, params)
    setup = setup_for(data, params)
    study = optuna.create_study(
        direction=direction_of(params.metric), sampler=make_sampler("random", setup.space, 0)
    )
    objective = make_objective(
        data, setup.spec, setup.space, strategy="random", metric=params.metric
    )
    study.optimize(objective, n_trials=params.optimization.n_trials)
    config = config_of(study.best_trial.params, setup.space)

    def progress(*_args: Any, **_kw: Any) -> None:
        pass

    if data.problem == "clustering":
        return data, study, fit_segmentation(progress, params, setup, config)
    return data, study, fit_supervised(progress, params, setup, study, config)


# ------------------------------------------------------------------ the four problems


def test_lead_scoring_on_bank(bank: pd.DataFrame) -> None:
    families = ["logistic_regression", "random_forest"]
    params = params_of("lead_scoring", target="y01", optimization={"families": families})
    data, study, fitted = train(bank, params)
    assert data.classes == ["0", "1"] and data.positive_class == "1"
    assert len(study.trials) == 3
    metrics = fitted["metrics"]
    assert 0.5 < metrics["roc_auc"] <= 1.0
    assert metrics["rows"] == len(data.y_holdout) == 300
    threshold = fitted["threshold"]
    assert threshold["objective"] == "f1" and 0.0 < threshold["threshold"] < 1.0
    assert metrics["threshold"] == threshold["threshold"]
    assert fitted["ensemble"] is None and fitted["config"]["family"] in families
    assert fitted["cv"]["folds"] == 3 and len(fitted["cv"]["scores"]) == 3
    assert {item["feature"] for item in fitted["importances"]} == set(data.X_train.columns)


def test_journey_prediction_on_bank_poutcome(bank: pd.DataFrame) -> None:
    families = ["logistic_regression", "random_forest"]
    params = params_of(
        "journey_prediction",
        target="poutcome",
        exclude=["y01"],
        optimization={"families": families},
    )
    data, _study, fitted = train(bank, params)
    assert data.classes == ["failure", "other", "success", "unknown"]
    assert data.merged_classes == {}
    metrics = fitted["metrics"]
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and metrics["log_loss"] > 0.0
    assert [row["class"] for row in metrics["per_class"]] == data.classes
    assert all(0.0 <= row["recall"] <= 1.0 for row in metrics["per_class"])
    assert sum(row["support"] for row in metrics["per_class"]) == len(data.y_holdout)
    proba = fitted["pipeline"].predict_proba(data.X_holdout)
    assert proba.shape == (len(data.X_holdout), 4)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_clv_regression_on_cdnow(clv_table: pd.DataFrame) -> None:
    assert 0.5 < (clv_table["spend_next"] == 0).mean() < 0.9  # zero-heavy, as CLV is
    families = ["ridge", "random_forest", "tweedie"]
    params = params_of(
        "clv",
        target="spend_next",
        exclude=["customer_id"],
        optimization={"families": families},
    )
    data, study, fitted = train(clv_table, params)
    assert data.numeric == [
        "recency_days",
        "frequency",
        "monetary_sum",
        "monetary_mean",
        "tenure_days",
    ]
    assert data.split["strategy"] == "kfold"
    metrics = fitted["metrics"]
    for name in ("rmse", "mae", "r2", "spearman"):
        assert metrics[name] is not None and math.isfinite(metrics[name]), name
    assert metrics["rmse"] >= metrics["mae"] > 0.0
    assert metrics["spearman"] > 0.2
    assert fitted["threshold"] is None
    values = [t.value for t in study.trials if t.value is not None]
    assert study.best_value == pytest.approx(min(values))  # rmse: lower is better


@pytest.mark.parametrize(
    "config",
    [
        {"family": "tweedie", **presets_of("tweedie", "regression")[0]},
        {
            "family": "hist_gradient_boosting",
            **presets_of("hist_gradient_boosting", "regression")[3],
        },
    ],
    ids=["tweedie", "hgb_poisson"],
)
def test_zero_heavy_losses_predict_non_negative_spend(
    clv_table: pd.DataFrame, config: dict[str, Any]
) -> None:
    params = params_of("clv", target="spend_next", exclude=["customer_id"])
    data = prepared(clv_table, params)
    spec = ModelSpec(problem="regression", numeric=data.numeric, categorical=[], seed=0)
    full = {**config, "prep_encoding": "onehot"}
    if config["family"] == "tweedie":
        full.update(prep_scaling="standard", prep_interactions=0)
    else:
        assert config["hgb_loss"] == "poisson"
    model = build_pipeline(full, spec).fit(data.X_train, data.y_train)
    predicted = model.predict(data.X_holdout)
    assert np.isfinite(predicted).all() and (predicted >= 0).all()
    # a log link: more past spend, more predicted spend, on average
    top = data.X_holdout["monetary_sum"] > data.X_holdout["monetary_sum"].median()
    assert predicted[top.to_numpy()].mean() > predicted[~top.to_numpy()].mean()


def test_segmentation_on_bank_numeric_columns(bank: pd.DataFrame) -> None:
    params = params_of("segmentation", segments={"min": 2, "max": 4})
    assert params.strategy == "kfold" and params.ensemble.methods == []
    data, study, fitted = train(bank[BANK_NUMERIC], params)
    assert all(2 <= t.params["n_segments"] <= 4 for t in study.trials)
    metrics = fitted["metrics"]
    n_segments = fitted["config"]["n_segments"]
    assert 2 <= n_segments <= 4 and metrics["n_segments"] == n_segments
    assert -1.0 <= metrics["silhouette"] <= 1.0
    assert -1.0 <= metrics["training"]["silhouette"] <= 1.0
    assert metrics["rows"] == len(data.X_holdout)
    assert sum(size["rows"] for size in metrics["sizes"]) == len(data.X_holdout)
    segments = fitted["segments"]
    assert sum(size["rows"] for size in segments["sizes"]) == len(data.X_train)
    top = [item["feature"] for item in segments["top_features"]]
    assert top and set(top) <= set(BANK_NUMERIC)
    assert all(0.0 <= item["eta_squared"] <= 1.0 for item in segments["top_features"])
    for profile in segments["segments"]:
        assert [feature["feature"] for feature in profile["features"]] == top
    assert fitted["threshold"] is None and fitted["ensemble"] is None


def test_ensembles_follow_the_rule_in_a_real_fit(bank: pd.DataFrame) -> None:
    params = params_of(
        "lead_scoring",
        target="y01",
        optimization={"families": ["logistic_regression"]},
        preprocessing={"interactions": [0]},
        ensemble={"methods": ["voting", "stacking"], "top_k": 2},
    )
    _data, _study, fitted = train(bank, params)
    record = fitted["ensemble"]
    assert record["rule"] == RULE and record["members"] == ["logistic_regression"] * 2
    kept = [m for m in ("voting", "stacking") if record[m]["gain_over_single"] > record["margin"]]
    if kept:
        assert record["chosen"] in kept
    else:
        assert record["chosen"] == "single"
    if record["chosen"] == "single":
        assert fitted["config"]["family"] == "logistic_regression"
    else:
        assert fitted["config"]["family"] == record["chosen"]
        assert fitted["cv"]["mean"] == record[record["chosen"]]["mean"]


# ------------------------------------------------------------------ refusals


def test_a_single_row_class_is_merged_into_other(bank: pd.DataFrame) -> None:
    frame = bank.copy()
    frame.loc[7, "poutcome"] = "weird"
    params = params_of("journey_prediction", target="poutcome", exclude=["y01"])
    assert params.rare_classes == "merge"
    data = prepared(frame, params)
    assert data.merged_classes == {"weird": 1}
    assert data.classes == ["failure", "other", "success", "unknown"]
    other = data.classes.index("other")
    before = int((bank["poutcome"] == "other").sum())
    merged = np.concatenate([data.y_train, data.y_holdout])
    assert int((merged == other).sum()) == before + 1


def test_a_single_row_class_is_refused_when_asked(bank: pd.DataFrame) -> None:
    frame = bank.copy()
    frame.loc[7, "poutcome"] = "weird"
    params = params_of(
        "journey_prediction", target="poutcome", exclude=["y01"], rare_classes="refuse"
    )
    with pytest.raises(TrainingInputError) as caught:
        prepared(frame, params)
    assert caught.value.code == "target_class_too_small"
    assert "'weird' (1)" in str(caught.value)


def refusal(frame: pd.DataFrame, **kw: Any) -> TrainingInputError:
    options: dict[str, Any] = {
        "problem": "regression",
        "target": "spend_next",
        "exclude": ["customer_id"],
        "features": None,
        "plan": SplitPlan(strategy="kfold", folds=3, holdout=0.2),
        "seed": 0,
        **kw,
    }
    with pytest.raises(TrainingInputError) as caught:
        prepare_training(frame, **options)
    return caught.value


def test_regression_needs_a_numeric_target(bank: pd.DataFrame) -> None:
    error = refusal(bank, target="job", exclude=[])
    assert error.code == "target_not_numeric" and "'job'" in str(error)


def test_max_features_above_the_inputs(bank: pd.DataFrame) -> None:
    # 15 inputs: the 16 columns left but the target y01
    error = refusal(bank, problem="binary", target="y01", exclude=[], max_features=16)
    assert error.code == "max_features_too_large"
    assert "16" in str(error) and "15 usable" in str(error)


def test_time_series_needs_the_cutoff_column(clv_table: pd.DataFrame) -> None:
    plan = SplitPlan(strategy="time_series", folds=3, horizon_days=273)
    error = refusal(clv_table, plan=plan)
    assert error.code == "column_missing" and "'cutoff'" in str(error)


def test_time_series_needs_enough_cutoffs(clv_table: pd.DataFrame) -> None:
    frame = clv_table.copy()
    # three monthly cutoffs, a 39-week horizon: two cutoffs fall inside one horizon (the gap),
    # and 3 folds + a gap of 2 need more than 3 distinct cutoffs
    months = pd.to_datetime(["1997-08-01", "1997-09-01", "1997-10-01"])
    frame["cutoff"] = months[np.arange(len(frame)) % 3]
    plan = SplitPlan(strategy="time_series", folds=3, horizon_days=273)
    error = refusal(frame, plan=plan)
    assert error.code == "too_few_cutoffs"
    assert "gap = 2" in str(error) and "has 3" in str(error)


def test_a_time_ordered_fold_with_one_class_is_refused() -> None:
    """Positives only at the first and last weekly cutoffs: the middle folds validate on
    negatives only, where ROC AUC is undefined, so the split is refused up front."""
    n, rng = 400, np.random.default_rng(0)
    week = np.arange(n) % 20
    y = (((week < 4) | (week >= 17)) & (rng.random(n) < 0.5)).astype(int)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n) + y,
            "cutoff": pd.date_range("2020-01-06", periods=20, freq="7D")[week],
            "label": y,
        }
    )
    with pytest.raises(TrainingInputError) as caught:
        prepare_training(
            frame,
            problem="binary",
            target="label",
            exclude=[],
            features=None,
            plan=SplitPlan(strategy="time_series", folds=3, horizon_days=7),
            seed=0,
        )
    assert caught.value.code == "too_few_rows"
    assert "validates on class '0' only" in str(caught.value)


def test_time_series_folds_respect_the_horizon(clv_table: pd.DataFrame) -> None:
    frame = clv_table.copy()
    weeks = pd.date_range("1997-06-02", periods=20, freq="7D")
    frame["cutoff"] = weeks[np.arange(len(frame)) % 20]
    plan = SplitPlan(strategy="time_series", folds=3, horizon_days=14)
    data = prepare_training(
        frame,
        problem="regression",
        target="spend_next",
        exclude=["customer_id"],
        features=None,
        plan=plan,
        seed=0,
    )
    assert "cutoff" in data.dropped and "cutoff" not in data.X_train.columns
    assert data.split["strategy"] == "time_series" and len(data.folds) == 3
    for window in data.split["fold_windows"]:
        fit_max = pd.Timestamp(window["fit_cutoff_max"])
        assert fit_max + pd.Timedelta(days=14) <= pd.Timestamp(window["validate_cutoff_min"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model_type": "segmentation", "target": "y01"}, "segmentation learns without a target"),
        (
            {"model_type": "churn", "optimization": {"metric": "rmse"}},
            "metric 'rmse' does not apply to churn",
        ),
        (
            {"model_type": "clv", "validation": {"strategy": "stratified_cv"}},
            "stratified_cv needs classes; clv",
        ),
        (
            {"model_type": "clv", "optimization": {"families": ["logistic_regression"]}},
            "clv cannot use family logistic_regression",
        ),
    ],
)
def test_the_contract_refuses_what_the_problem_cannot_do(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainParams.model_validate({"dataset_id": 1, "model_name": "m", **fields})


# ------------------------------------------------------------------ feature selection


def leaky_table(n: int = 600) -> pd.DataFrame:
    """Three informative columns, two noise columns and ``leak``: noise on the training rows,
    the label itself (as ±10) on the holdout rows prepare_training will choose."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = (x.sum(axis=1) + rng.normal(size=n) > 0).astype(np.int64)
    split = make_split(n_rows=n, strategy="stratified_cv", folds=3, holdout=0.2, seed=0, stratify=y)
    leak = rng.normal(size=n)
    leak[split.holdout_rows] = 10.0 * (2 * y[split.holdout_rows] - 1)
    return pd.DataFrame(
        {
            "x1": x[:, 0],
            "x2": x[:, 1],
            "x3": x[:, 2],
            "leak": leak,
            "n1": rng.normal(size=n),
            "n2": rng.normal(size=n),
            "y": y,
        }
    )


@pytest.mark.parametrize("method", ["tree_importance", "correlation", "mutual_info"])
def test_selection_sees_only_the_rows_it_is_fitted_on(method: str) -> None:
    data = prepare_training(
        leaky_table(), problem="binary", target="y", exclude=[], features=None, plan=PLAN, seed=0
    )
    # the same split as make_split's: the leak is the label on every holdout row
    assert np.array_equal(data.X_holdout["leak"], 10.0 * (2 * data.y_holdout - 1))
    spec = ModelSpec(
        problem="binary",
        numeric=data.numeric,
        categorical=data.categorical,
        seed=0,
        selection=method,
        max_features=3,
    )
    informative = ["numeric__x1", "numeric__x2", "numeric__x3"]
    model = build_pipeline(LR, spec).fit(data.X_train, data.y_train)
    assert selected_features(model) == informative
    for fit_rows, _valid in data.folds:
        fold = build_pipeline(LR, spec).fit(data.X_train.iloc[fit_rows], data.y_train[fit_rows])
        assert selected_features(fold) == informative
    # the control: fitted on every row, the same selector would take the leak
    everything = pd.concat([data.X_train, data.X_holdout], ignore_index=True)
    labels = np.concatenate([data.y_train, data.y_holdout])
    cheat = build_pipeline(LR, spec).fit(everything, labels)
    assert "numeric__leak" in (selected_features(cheat) or [])


def test_no_selection_step_without_a_method() -> None:
    spec = ModelSpec(problem="binary", numeric=["x1"], categorical=[], seed=0)
    model = build_pipeline(LR, spec)
    assert "select" not in model.named_steps and selected_features(model) is None
    with pytest.raises(ValueError, match="max_features"):
        build_pipeline(LR, ModelSpec("binary", ["x1"], [], 0, selection="correlation"))


# ------------------------------------------------------------------ preprocessing options


@pytest.fixture(scope="module")
def bank_data(bank: pd.DataFrame) -> TrainingData:
    return prepare_training(
        bank.iloc[:1000],
        problem="binary",
        target="y01",
        exclude=[],
        features=None,
        plan=PLAN,
        seed=0,
    )


def widths(model: Any, data: TrainingData) -> tuple[int, int]:
    """(numeric, categorical) output columns of the fitted prepare step."""
    branches = model.named_steps["prepare"].named_transformers_
    X = data.X_holdout
    numeric = branches["numeric"].transform(X[data.numeric]).shape[1]
    categorical = branches["categorical"].transform(X[data.categorical]).shape[1]
    total = model.named_steps["prepare"].transform(X).shape[1]
    assert total == numeric + categorical
    return numeric, categorical


def onehot_width(column: pd.Series) -> int:
    """One column per category seen in at least MIN_CATEGORY_ROWS rows, plus one shared
    column for the rarer ones (if any)."""
    counts = column.value_counts()
    return int((counts >= MIN_CATEGORY_ROWS).sum()) + int((counts < MIN_CATEGORY_ROWS).any())


@pytest.mark.parametrize(
    "prep",
    [
        {"prep_scaling": "robust", "prep_interactions": 0, "prep_encoding": "onehot"},
        {"prep_scaling": "standard", "prep_interactions": 0, "prep_encoding": "onehot"},
        {"prep_scaling": "none", "prep_interactions": 0, "prep_encoding": "onehot"},
        {"prep_scaling": "standard", "prep_interactions": 3, "prep_encoding": "onehot"},
        {"prep_scaling": "standard", "prep_interactions": 0, "prep_encoding": "ordinal"},
        {"prep_scaling": "robust", "prep_interactions": 3, "prep_encoding": "ordinal"},
    ],
    ids=["robust", "standard", "unscaled", "interactions", "ordinal", "all"],
)
def test_preprocessing_choices_fit_and_predict(bank_data: TrainingData, prep: dict) -> None:
    data = bank_data
    assert data.numeric == BANK_NUMERIC and len(data.categorical) == 9
    spec = ModelSpec(problem="binary", numeric=data.numeric, categorical=data.categorical, seed=0)
    with warnings.catch_warnings():
        # unscaled balances (in the thousands) slow lbfgs down; converged or not, it predicts
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = build_pipeline({**LR, **prep}, spec).fit(data.X_train, data.y_train)
    numeric, categorical = widths(model, data)
    k, n = prep["prep_interactions"], len(data.numeric)  # no missing values: no indicators
    # the inputs, then the k chosen inputs again with their C(k, 2) products
    assert numeric == n + k * (k + 1) // 2 == n + k + math.comb(k, 2)
    if prep["prep_encoding"] == "ordinal":
        assert categorical == len(data.categorical)
    else:
        assert categorical == sum(onehot_width(data.X_train[c]) for c in data.categorical)
        assert categorical > len(data.categorical)
    proba = model.predict_proba(data.X_holdout)
    assert proba.shape == (len(data.X_holdout), 2) and np.allclose(proba.sum(axis=1), 1.0)


# ------------------------------------------------------------------ the ensemble rule


def cv(scores: list[float], fold_predictions: list[np.ndarray] | None = None) -> CVResult:
    return CVResult(
        scores=scores,
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        oof=None,
        fold_predictions=fold_predictions,
    )


# mean 0.75, std 0.25, standard error 0.25 / sqrt(4) = 0.125: all exact in binary
SINGLE = cv([0.5, 0.5, 1.0, 1.0])


def test_standard_error_by_hand() -> None:
    assert (SINGLE.mean, SINGLE.std, SINGLE.standard_error) == (0.75, 0.25, 0.125)


@pytest.mark.parametrize(
    ("metric", "ensemble_mean", "chosen"),
    [
        ("roc_auc", 0.9375, "voting"),  # gain 0.1875 > 0.125
        ("roc_auc", 0.875, "single"),  # gain 0.125, not more than the standard error
        ("roc_auc", 0.8, "single"),  # gain 0.05
        ("roc_auc", 0.5, "single"),  # worse
        ("log_loss", 0.5625, "voting"),  # lower is better: gain 0.1875
        ("log_loss", 0.625, "single"),  # gain 0.125 exactly
        ("log_loss", 0.9375, "single"),  # higher loss: worse, whatever a maximiser would say
        ("rmse", 0.5, "voting"),  # gain 0.25
        ("rmse", 1.0, "single"),
    ],
)
def test_an_ensemble_is_kept_only_beyond_the_standard_error(
    metric: str, ensemble_mean: float, chosen: str
) -> None:
    ensemble = cv([ensemble_mean] * 4)
    picked, record = choose(SINGLE, {"voting": ensemble}, metric)
    assert picked == chosen == record["chosen"]
    assert record["margin"] == 0.125 and record["metric"] == metric
    sign = 1.0 if metric == "roc_auc" else -1.0
    assert record["voting"]["gain_over_single"] == pytest.approx(sign * (ensemble_mean - 0.75))
    assert record["single"]["standard_error"] == 0.125


def test_the_best_of_two_kept_ensembles_wins() -> None:
    picked, record = choose(
        SINGLE, {"voting": cv([0.9] * 4), "stacking": cv([0.95] * 4)}, "roc_auc"
    )
    assert record["voting"]["gain_over_single"] == pytest.approx(0.15)
    assert picked == "stacking"
    picked, _ = choose(SINGLE, {"voting": cv([0.55] * 4), "stacking": cv([0.6] * 4)}, "rmse")
    assert picked == "voting"  # the lower error


def test_voting_cv_averages_the_fold_predictions_by_hand() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    folds = [(np.array([3, 4, 5]), np.array([0, 1, 2])), (np.array([0, 1, 2]), np.array([3, 4, 5]))]
    first = cv([0.0, 0.0], [np.array([0.2, 0.6, 0.4]), np.array([0.7, 0.9, 0.1])])
    second = cv([0.0, 0.0], [np.array([0.4, 0.8, 0.0]), np.array([0.3, 0.5, 0.5])])
    result = voting_cv([first, second], y, folds, "brier")
    # averaged: [0.3, 0.7, 0.2] and [0.5, 0.7, 0.3]
    assert result.fold_predictions is not None
    assert np.allclose(result.fold_predictions[0], [0.3, 0.7, 0.2])
    assert np.allclose(result.fold_predictions[1], [0.5, 0.7, 0.3])
    assert result.oof is not None and np.allclose(result.oof, [0.3, 0.7, 0.2, 0.5, 0.7, 0.3])
    # brier per fold: (0.09 + 0.09 + 0.04) / 3 and (0.25 + 0.09 + 0.09) / 3
    assert result.scores == pytest.approx([0.22 / 3, 0.43 / 3])
    assert result.mean == pytest.approx(0.65 / 6)
    assert result.std == pytest.approx(0.21 / 6)


def test_voting_cv_averages_class_probabilities() -> None:
    y = np.array([0, 2, 1, 1])
    folds = [(np.array([2, 3]), np.array([0, 1])), (np.array([0, 1]), np.array([2, 3]))]
    a = [np.array([[0.6, 0.2, 0.2], [0.2, 0.2, 0.6]]), np.array([[0.2, 0.6, 0.2]] * 2)]
    b = [np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), np.array([[0.0, 1.0, 0.0]] * 2)]
    result = voting_cv([cv([0, 0], a), cv([0, 0], b)], y, folds, "log_loss")
    assert result.oof is not None and result.oof.shape == (4, 3)
    assert np.allclose(result.oof[0], [0.8, 0.1, 0.1]) and np.allclose(result.oof.sum(axis=1), 1)
    assert result.mean == pytest.approx(-math.log(0.8))


def test_voting_cv_needs_every_members_fold_predictions() -> None:
    folds = [(np.array([1]), np.array([0])), (np.array([0]), np.array([1]))]
    with_predictions = cv([0.0, 0.0], [np.array([0.2]), np.array([0.7])])
    with pytest.raises(ValueError, match="keep_oof"):
        voting_cv([with_predictions, cv([0.0, 0.0])], np.array([0, 1]), folds, "brier")


A = {"family": "logistic_regression", "lr_C": 1.0}
B = {"family": "random_forest", "rf_max_depth": 6}
C = {"family": "extra_trees", "et_max_depth": 3}


def test_top_distinct_configs_dedupes_and_respects_direction() -> None:
    trials = [(A, 0.8), (B, 0.9), ({"lr_C": 1.0, "family": "logistic_regression"}, 0.85), (C, 0.7)]
    assert top_distinct_configs(trials, 2, "maximize") == [B, A]
    assert top_distinct_configs(trials, 3, "maximize") == [B, A, C]
    assert top_distinct_configs(trials, 2, "minimize") == [C, A]
    assert top_distinct_configs(trials, 10, "minimize") == [C, A, B]  # 3 distinct only
    assert top_distinct_configs([(A, 0.5), (A, 0.6)], 2, "maximize") == [A]

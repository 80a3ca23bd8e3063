"""The search space, pipeline, metrics, cross-validation and Optuna objective, on small data."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
)
from threadpoolctl import threadpool_limits

from workers.training.cross_validation import cross_validate, stratified_folds
from workers.training.families import (
    FAMILIES,
    GRID_PRESETS,
    config_of,
    grid_search_space,
    grid_size,
    suggest_config,
    suggest_grid_config,
)
from workers.training.inputs import TrainingData, prepare_binary
from workers.training.metrics import METRICS
from workers.training.objective import (
    Strategy,
    direction_of,
    make_objective,
    make_pruner,
    make_sampler,
)
from workers.training.pipeline import build_pipeline, model_frame

optuna.logging.set_verbosity(optuna.logging.WARNING)

LR = {"family": "logistic_regression", **GRID_PRESETS["logistic_regression"][1]}
# 160 training rows, 3 folds: no leaf can hold 200 rows, so this model never splits and
# predicts one constant probability (ROC AUC 0.5 on every fold).
CONSTANT = {
    "family": "hist_gradient_boosting",
    **GRID_PRESETS["hist_gradient_boosting"][0],
    "hgb_min_samples_leaf": 200,
}


def synthetic(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A numeric, a bool and a text column (with missing values) that all carry signal."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    flag = rng.random(n) < 0.5
    plan = rng.choice(np.array(["basic", "pro", "team"], dtype=object), size=n)
    noise = rng.normal(scale=0.5, size=n)
    churn = x + 0.8 * flag + 0.6 * (plan == "pro") + noise > 0.5
    plan[rng.random(n) < 0.1] = None
    return pd.DataFrame({"x": x, "flag": flag, "plan": pd.Series(plan, dtype="str"), "y": churn})


def training_data(n: int = 200, folds: int = 3) -> TrainingData:
    return prepare_binary(
        synthetic(n), target="y", exclude=[], features=None, holdout=0.2, folds=folds, seed=0
    )


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return training_data()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """OpenMP threads of histogram boosting spin against each other on a small CI box."""
    with threadpool_limits(limits=1):
        yield


# ------------------------------------------------------------------ families + pipeline


@pytest.mark.parametrize("family", FAMILIES)
def test_presets_lie_in_the_search_space(family: str) -> None:
    for preset in GRID_PRESETS[family]:
        params = {"family": family, **preset}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FixedTrial warns about out-of-range values
            assert suggest_config(optuna.trial.FixedTrial(params), FAMILIES) == params


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_fits_and_predicts_unseen_and_missing_values(family: str) -> None:
    config = suggest_config(
        optuna.trial.FixedTrial({"family": family, **GRID_PRESETS[family][0]}), FAMILIES
    )
    train = synthetic(120)
    numeric, categorical = ["x", "flag"], ["plan"]
    model = build_pipeline(config, numeric, categorical, seed=0)
    model.fit(model_frame(train, numeric, categorical), train["y"].astype(int))
    new = pd.DataFrame(
        {
            "x": [0.3, np.nan, -1.0],
            "flag": [True, False, True],
            "plan": pd.Series(["enterprise", None, "pro"], dtype="str"),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the encoder notes the unseen category
        proba = model.predict_proba(model_frame(new, numeric, categorical))
    assert proba.shape == (3, 2)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)


def test_only_the_linear_model_is_scaled() -> None:
    lr = build_pipeline(LR, ["x"], ["plan"], seed=0)
    trees = build_pipeline(CONSTANT, ["x"], ["plan"], seed=0)
    numeric_steps = lr.named_steps["prepare"].transformers[0][1].named_steps
    assert list(numeric_steps) == ["impute", "scale"]
    assert list(trees.named_steps["prepare"].transformers[0][1].named_steps) == ["impute"]


def test_class_weight_none_is_mapped_back() -> None:
    model = build_pipeline(LR, ["x"], [], seed=0).named_steps["model"]
    assert model.class_weight is None
    forest = {"family": "random_forest", **GRID_PRESETS["random_forest"][3]}
    assert build_pipeline(forest, ["x"], [], seed=3).named_steps["model"].class_weight == (
        "balanced_subsample"
    )


def test_grid_space_and_size() -> None:
    assert grid_size(FAMILIES) == 16
    assert grid_size(["extra_trees"]) == 4
    assert grid_search_space(["random_forest", "extra_trees"]) == {
        "family": ["random_forest", "extra_trees"],
        "preset": [0, 1, 2, 3],
    }
    assert all(len(presets) == 4 for presets in GRID_PRESETS.values())
    with pytest.raises(ValueError, match="families"):
        grid_size(["svm"])


@pytest.mark.parametrize("strategy", ["random", "grid"])
def test_config_of_rebuilds_the_trained_config(strategy: Strategy) -> None:
    suggest = suggest_grid_config if strategy == "grid" else suggest_config

    def objective(trial: optuna.Trial) -> float:
        config = suggest(trial, FAMILIES)
        trial.set_user_attr("config", config)
        return float(trial.number)

    study = optuna.create_study(direction="maximize", sampler=make_sampler(strategy, FAMILIES, 1))
    study.optimize(objective, n_trials=3)
    for trial in study.trials:
        assert config_of(trial.params) == trial.user_attrs["config"]
    assert config_of(study.best_trial.params) == study.trials[2].user_attrs["config"]


# ------------------------------------------------------------------ metrics


Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_metrics_on_a_hand_example() -> None:
    expected = {
        # positive/negative pairs ranked right: (.35 > .1), (.8 > .1), (.8 > .4) -> 3 of 4
        "roc_auc": 0.75,
        # ranked .8(+) .4(-) .35(+) .1(-): precision 1 at recall 1/2, 2/3 at recall 1
        "pr_auc": 0.5 * 1 + 0.5 * 2 / 3,
        "log_loss": -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4,
        "brier": (0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4,
        # predicted [0, 0, 0, 1]: 3 of 4 right; precision 1, recall 1/2 -> F1 2/3
        "accuracy": 0.75,
        "f1": 2 / 3,
    }
    assert set(METRICS) == set(expected)
    for name, value in expected.items():
        assert METRICS[name].score(Y, P) == pytest.approx(value), name
    labels = (P > 0.5).astype(int)
    assert METRICS["roc_auc"].score(Y, P) == pytest.approx(roc_auc_score(Y, P))
    assert METRICS["pr_auc"].score(Y, P) == pytest.approx(average_precision_score(Y, P))
    assert METRICS["log_loss"].score(Y, P) == pytest.approx(log_loss(Y, P))
    assert METRICS["brier"].score(Y, P) == pytest.approx(brier_score_loss(Y, P))
    assert METRICS["accuracy"].score(Y, P) == pytest.approx(accuracy_score(Y, labels))
    assert METRICS["f1"].score(Y, P) == pytest.approx(f1_score(Y, labels))


def test_metric_directions_and_thresholds() -> None:
    assert [m for m in METRICS if direction_of(m) == "minimize"] == ["log_loss", "brier"]
    assert [m for m in METRICS if METRICS[m].needs_threshold] == ["accuracy", "f1"]
    with pytest.raises(ValueError, match="roc_auc"):
        direction_of("auc")


# ------------------------------------------------------------------ cross-validation


def test_folds_are_stratified_disjoint_and_cover_all_rows() -> None:
    y = np.array([1] * 10 + [0] * 20)
    folds = stratified_folds(y, 5, seed=0)
    assert len(folds) == 5
    validation = np.concatenate([valid for _, valid in folds])
    assert sorted(validation) == list(range(30))  # every row validated exactly once
    for train, valid in folds:
        assert not set(train) & set(valid) and len(train) + len(valid) == 30
        assert y[valid].sum() == 2 and len(valid) == 6  # 10 / 5 positives, 20 / 5 negatives
    again = stratified_folds(y, 5, seed=0)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))


def test_cross_validate_reports_running_means(data: TrainingData) -> None:
    calls: list[tuple[int, float]] = []
    result = cross_validate(
        LR,
        data,
        folds=3,
        metric="roc_auc",
        seed=0,
        after_fold=lambda k, m: calls.append((k, m)),
        keep_oof=True,
    )
    assert len(result.scores) == 3 and all(0.7 < s <= 1.0 for s in result.scores)
    assert result.mean == pytest.approx(np.mean(result.scores))
    assert result.std == pytest.approx(np.std(result.scores))
    running = [float(np.mean(result.scores[: k + 1])) for k in range(3)]
    assert [k for k, _ in calls] == [0, 1, 2]
    assert [m for _, m in calls] == pytest.approx(running)
    assert result.oof is not None and result.oof.shape == data.y_train.shape
    assert np.isfinite(result.oof).all()
    assert cross_validate(LR, data, folds=3, metric="roc_auc", seed=0).oof is None


def test_an_exception_in_after_fold_stops_cross_validation(data: TrainingData) -> None:
    calls: list[int] = []

    def prune_at_second_fold(k: int, mean: float) -> None:
        calls.append(k)
        if k == 1:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        cross_validate(
            LR, data, folds=3, metric="log_loss", seed=0, after_fold=prune_at_second_fold
        )
    assert calls == [0, 1]


# ------------------------------------------------------------------ objective


def test_random_study_records_cv_results(data: TrainingData) -> None:
    returns: list[int] = []
    objective = make_objective(
        data,
        families=["logistic_regression", "hist_gradient_boosting"],
        strategy="random",
        folds=3,
        metric="roc_auc",
        seed=0,
        before_return=lambda: returns.append(1),
    )
    study = optuna.create_study(
        direction=direction_of("roc_auc"),
        sampler=make_sampler("random", FAMILIES, seed=0),
        pruner=make_pruner(None, 3),
    )
    study.optimize(objective, n_trials=4)
    assert len(returns) == 4
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        scores = trial.user_attrs["cv_scores"]
        assert len(scores) == 3 and trial.value == pytest.approx(np.mean(scores))
        assert trial.user_attrs["cv_std"] == pytest.approx(np.std(scores))
        assert trial.user_attrs["family"] == trial.params["family"]
        assert sorted(trial.intermediate_values) == [0, 1, 2]


def test_before_return_can_refuse_the_result(data: TrainingData) -> None:
    def lost_the_slot() -> None:
        raise RuntimeError("slot taken over")

    objective = make_objective(
        data,
        families=["logistic_regression"],
        strategy="random",
        folds=3,
        metric="roc_auc",
        seed=0,
        before_return=lost_the_slot,
    )
    study = optuna.create_study(direction="maximize")
    with pytest.raises(RuntimeError, match="slot"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


def test_median_pruner_stops_a_constant_model(data: TrainingData) -> None:
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler("random", FAMILIES, seed=0),
        pruner=make_pruner("median", 3),
    )
    for _ in range(5):  # the pruner's startup trials
        study.enqueue_trial(LR)
    study.enqueue_trial(CONSTANT)
    objective = make_objective(
        data, families=FAMILIES, strategy="random", folds=3, metric="roc_auc", seed=0
    )
    study.optimize(objective, n_trials=6)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 5 + [optuna.trial.TrialState.PRUNED]
    # warm-up: fold 0 is never judged alone, so the constant model stops after fold 1
    assert study.trials[5].intermediate_values == {0: 0.5, 1: 0.5}


def test_grid_study_visits_distinct_presets(data: TrainingData) -> None:
    families = ["logistic_regression", "hist_gradient_boosting"]
    objective = make_objective(
        data, families=families, strategy="grid", folds=3, metric="log_loss", seed=0
    )
    study = optuna.create_study(
        direction=direction_of("log_loss"), sampler=make_sampler("grid", families, seed=0)
    )
    study.optimize(objective, n_trials=20)  # the grid sampler stops once every cell ran
    cells = [(t.params["family"], t.params["preset"]) for t in study.trials]
    assert len(cells) == grid_size(families) == 8
    assert sorted(cells) == sorted((f, p) for f in families for p in range(4))


def test_samplers_and_pruners() -> None:
    assert isinstance(make_sampler("bayesian", FAMILIES, 0), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("random", FAMILIES, 0), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("grid", FAMILIES, 0), optuna.samplers.GridSampler)
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 5), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner(None, 5), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="pruner"):
        make_pruner("asha", 5)

"""The search space, pipeline, metrics, cross-validation and Optuna objective, on small data."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

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
from sklearn.preprocessing import RobustScaler, StandardScaler
from threadpoolctl import threadpool_limits

from api_client.train_params import CLASSIFIER_FAMILIES as FAMILIES
from api_client.train_params import FAMILIES_OF
from workers.training.cross_validation import cross_validate, stratified_folds
from workers.training.families import (
    GRID_PRESETS,
    LINEAR,
    SearchSpace,
    config_of,
    grid_search_space,
    grid_size,
    suggest_config,
    suggest_grid_config,
    warm_start_params,
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
from workers.training.pipeline import ModelSpec, build_pipeline, model_frame

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = SearchSpace(problem="binary", families=FAMILIES)
SPEC = ModelSpec(problem="binary", numeric=["x", "flag"], categorical=["plan"], seed=0)
# The first choice of each preprocessing list, as the grid strategy takes them.
LINEAR_PREP = {"prep_scaling": "standard", "prep_interactions": 0, "prep_encoding": "onehot"}
TREE_PREP = {"prep_encoding": "onehot"}


def with_prep(family: str, preset: dict[str, Any]) -> dict[str, Any]:
    return {"family": family, **preset, **(LINEAR_PREP if family in LINEAR else TREE_PREP)}


LR = with_prep("logistic_regression", GRID_PRESETS["logistic_regression"][1])
# 160 training rows, 3 folds: no leaf can hold 200 rows, so this model never splits and
# predicts one constant probability (ROC AUC 0.5 on every fold).
CONSTANT = with_prep(
    "hist_gradient_boosting",
    {**GRID_PRESETS["hist_gradient_boosting"][0], "hgb_min_samples_leaf": 200},
)


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


def spec_of(data: TrainingData) -> ModelSpec:
    return ModelSpec(problem="binary", numeric=data.numeric, categorical=data.categorical, seed=0)


def space_of(*families: str) -> SearchSpace:
    return SearchSpace(problem="binary", families=families)


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
        params = with_prep(family, preset)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FixedTrial warns about out-of-range values
            assert suggest_config(optuna.trial.FixedTrial(params), SPACE) == params


@pytest.mark.parametrize("family", FAMILIES)
def test_grid_configs_lie_in_the_search_space(family: str) -> None:
    for preset in range(4):
        grid = suggest_grid_config(
            optuna.trial.FixedTrial({"family": family, "preset": preset}), SPACE
        )
        assert grid == with_prep(family, GRID_PRESETS[family][preset])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert suggest_config(optuna.trial.FixedTrial(grid), SPACE) == grid


@pytest.mark.parametrize(
    ("family", "keys"),
    [
        ("logistic_regression", {"prep_scaling", "prep_interactions", "prep_encoding"}),
        ("ridge", {"prep_scaling", "prep_interactions", "prep_encoding"}),
        ("tweedie", {"prep_scaling", "prep_interactions", "prep_encoding"}),
        ("random_forest", {"prep_encoding"}),
        ("extra_trees", {"prep_encoding"}),
        ("hist_gradient_boosting", {"prep_encoding"}),
        ("kmeans", {"prep_scaling", "prep_encoding"}),
        ("gaussian_mixture", {"prep_scaling", "prep_encoding"}),
    ],
)
def test_preprocessing_is_searched_where_it_matters(family: str, keys: set[str]) -> None:
    problem = {"ridge": "regression", "tweedie": "regression"}.get(family, "binary")
    if family in ("kmeans", "gaussian_mixture"):
        problem = "clustering"
    space = SearchSpace(problem=problem, families=(family,))  # type: ignore[arg-type]
    study = optuna.create_study(sampler=make_sampler("random", space, 0))
    for _ in range(5):
        trial = study.ask()
        config = suggest_config(trial, space)
        study.tell(trial, 0.0)
        assert {k for k in config if k.startswith("prep_")} == keys
        assert config.get("prep_scaling", "standard") in space.scaling
        assert config.get("prep_interactions", 0) in space.interactions
        assert config["prep_encoding"] in space.encoding


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_fits_and_predicts_unseen_and_missing_values(family: str) -> None:
    config = suggest_config(
        optuna.trial.FixedTrial(with_prep(family, GRID_PRESETS[family][0])), SPACE
    )
    train = synthetic(120)
    numeric, categorical = ["x", "flag"], ["plan"]
    model = build_pipeline(config, SPEC)
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


def numeric_steps(model: Any) -> dict[str, Any]:
    return dict(model.named_steps["prepare"].transformers[0][1].named_steps)


@pytest.mark.parametrize(
    ("scaling", "scaler"),
    [("standard", StandardScaler), ("robust", RobustScaler), ("none", None)],
)
def test_linear_models_are_scaled_as_configured(scaling: str, scaler: type | None) -> None:
    steps = numeric_steps(build_pipeline({**LR, "prep_scaling": scaling}, SPEC))
    if scaler is None:
        assert list(steps) == ["impute"]
    else:
        assert list(steps) == ["impute", "scale"] and type(steps["scale"]) is scaler


@pytest.mark.parametrize("family", ["random_forest", "extra_trees", "hist_gradient_boosting"])
def test_trees_are_never_scaled(family: str) -> None:
    config = with_prep(family, GRID_PRESETS[family][0])
    assert list(numeric_steps(build_pipeline(config, SPEC))) == ["impute"]
    # the search never asks a tree family for a scaling
    assert "prep_scaling" not in suggest_config(optuna.trial.FixedTrial(config), SPACE)


def test_class_weight_none_is_mapped_back() -> None:
    spec = ModelSpec(problem="binary", numeric=["x"], categorical=[], seed=0)
    model = build_pipeline(LR, spec).named_steps["model"]
    assert model.class_weight is None
    forest = with_prep("random_forest", GRID_PRESETS["random_forest"][3])
    spec3 = ModelSpec(problem="binary", numeric=["x"], categorical=[], seed=3)
    assert build_pipeline(forest, spec3).named_steps["model"].class_weight == ("balanced_subsample")


def test_grid_space_and_size() -> None:
    assert grid_size(SPACE) == 16
    assert grid_size(space_of("extra_trees")) == 4
    assert grid_search_space(space_of("random_forest", "extra_trees")) == {
        "family": ["random_forest", "extra_trees"],
        "preset": [0, 1, 2, 3],
    }
    assert all(len(presets) == 4 for presets in GRID_PRESETS.values())
    # clustering grids over the segment counts instead of presets
    segments = SearchSpace(problem="clustering", families=("kmeans",), segments=(2, 4))
    assert grid_search_space(segments) == {"family": ["kmeans"], "preset": [2, 3, 4]}
    assert grid_size(segments) == 3
    with pytest.raises(ValueError, match="families"):
        space_of("svm")
    with pytest.raises(ValueError, match="families"):
        space_of("ridge")  # a regression family
    with pytest.raises(ValueError, match="families"):
        space_of()


@pytest.mark.parametrize("strategy", ["random", "grid"])
def test_config_of_rebuilds_the_trained_config(strategy: Strategy) -> None:
    suggest = suggest_grid_config if strategy == "grid" else suggest_config

    def objective(trial: optuna.Trial) -> float:
        config = suggest(trial, SPACE)
        trial.set_user_attr("config", config)
        return float(trial.number)

    study = optuna.create_study(direction="maximize", sampler=make_sampler(strategy, SPACE, 1))
    study.optimize(objective, n_trials=3)
    for trial in study.trials:
        assert config_of(trial.params, SPACE) == trial.user_attrs["config"]
    assert config_of(study.best_trial.params, SPACE) == study.trials[2].user_attrs["config"]


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
    assert set(expected) <= set(METRICS)
    for name, value in expected.items():
        assert METRICS[name].score(Y, P) == pytest.approx(value), name
    labels = (P > 0.5).astype(int)
    assert METRICS["roc_auc"].score(Y, P) == pytest.approx(roc_auc_score(Y, P))
    assert METRICS["pr_auc"].score(Y, P) == pytest.approx(average_precision_score(Y, P))
    assert METRICS["log_loss"].score(Y, P) == pytest.approx(log_loss(Y, P))
    assert METRICS["brier"].score(Y, P) == pytest.approx(brier_score_loss(Y, P))
    assert METRICS["accuracy"].score(Y, P) == pytest.approx(accuracy_score(Y, labels))
    assert METRICS["f1"].score(Y, P) == pytest.approx(f1_score(Y, labels))


def test_multiclass_and_regression_metrics_by_hand() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.1, 0.1, 0.8]])
    # predicted [0, 1, 1, 2]: F1 per class 1, 2/3, 2/3; recalls 1, 1, 1/2
    assert METRICS["accuracy"].score(y, proba) == pytest.approx(0.75)
    assert METRICS["macro_f1"].score(y, proba) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert METRICS["balanced_accuracy"].score(y, proba) == pytest.approx(2.5 / 3)
    expected = -(math.log(0.7) + math.log(0.5) + math.log(0.3) + math.log(0.8)) / 4
    assert METRICS["log_loss"].score(y, proba) == pytest.approx(expected)
    target, predicted = np.array([0.0, 0.0, 2.0, 4.0]), np.array([1.0, 0.0, 2.0, 2.0])
    assert METRICS["rmse"].score(target, predicted) == pytest.approx(math.sqrt(5 / 4))
    assert METRICS["mae"].score(target, predicted) == pytest.approx(3 / 4)
    # mean 1.5, total sum of squares 2.25 + 2.25 + 0.25 + 6.25 = 11
    assert METRICS["r2"].score(target, predicted) == pytest.approx(1 - 5 / 11)
    # ranks [1.5, 1.5, 3, 4] against [1, 2, 3, 4]: deviations from 2.5 give
    # r = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    ranking = np.array([0.0, 0.1, 0.5, 0.9])
    assert METRICS["spearman"].score(target, ranking) == pytest.approx(math.sqrt(0.9))
    assert METRICS["spearman"].score(target, np.ones(4)) == 0.0  # no ranking at all


def test_metric_directions_and_thresholds() -> None:
    minimize = [m for m in METRICS if direction_of(m) == "minimize"]
    assert minimize == ["log_loss", "brier", "rmse", "mae"]
    assert [m for m in METRICS if METRICS[m].needs_threshold] == [
        "accuracy",
        "f1",
        "macro_f1",
        "balanced_accuracy",
    ]
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


def test_training_data_carries_its_folds(data: TrainingData) -> None:
    assert len(data.folds) == 3
    validation = np.sort(np.concatenate([valid for _, valid in data.folds]))
    assert validation.tolist() == list(range(len(data.y_train)))
    for fit, valid in data.folds:
        assert not set(fit) & set(valid)
        assert len(fit) + len(valid) == len(data.y_train)


def test_cross_validate_reports_running_means(data: TrainingData) -> None:
    calls: list[tuple[int, float]] = []
    spec = spec_of(data)
    result = cross_validate(
        LR,
        data,
        spec,
        metric="roc_auc",
        after_fold=lambda k, m: calls.append((k, m)),
        keep_oof=True,
    )
    assert len(result.scores) == 3 and all(0.7 < s <= 1.0 for s in result.scores)
    assert result.mean == pytest.approx(np.mean(result.scores))
    assert result.std == pytest.approx(np.std(result.scores))
    assert result.standard_error == pytest.approx(np.std(result.scores) / math.sqrt(3))
    running = [float(np.mean(result.scores[: k + 1])) for k in range(3)]
    assert [k for k, _ in calls] == [0, 1, 2]
    assert [m for _, m in calls] == pytest.approx(running)
    assert result.oof is not None and result.oof.shape == data.y_train.shape
    assert np.isfinite(result.oof).all()
    assert result.fold_predictions is not None
    for (_, valid), predicted in zip(data.folds, result.fold_predictions, strict=True):
        assert np.array_equal(result.oof[valid], predicted)
    plain = cross_validate(LR, data, spec, metric="roc_auc")
    assert plain.oof is None and plain.fold_predictions is None
    assert plain.scores == pytest.approx(result.scores)  # same folds, same seed


def test_an_exception_in_after_fold_stops_cross_validation(data: TrainingData) -> None:
    calls: list[int] = []

    def prune_at_second_fold(k: int, mean: float) -> None:
        calls.append(k)
        if k == 1:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        cross_validate(LR, data, spec_of(data), metric="log_loss", after_fold=prune_at_second_fold)
    assert calls == [0, 1]


# ------------------------------------------------------------------ objective


def test_random_study_records_cv_results(data: TrainingData) -> None:
    returns: list[int] = []
    space = space_of("logistic_regression", "hist_gradient_boosting")
    objective = make_objective(
        data,
        spec_of(data),
        space,
        strategy="random",
        metric="roc_auc",
        before_return=lambda: returns.append(1),
    )
    study = optuna.create_study(
        direction=direction_of("roc_auc"),
        sampler=make_sampler("random", space, seed=0),
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
        assert "prep_encoding" in trial.params


def test_before_return_can_refuse_the_result(data: TrainingData) -> None:
    def lost_the_slot() -> None:
        raise RuntimeError("slot taken over")

    objective = make_objective(
        data,
        spec_of(data),
        space_of("logistic_regression"),
        strategy="random",
        metric="roc_auc",
        before_return=lost_the_slot,
    )
    study = optuna.create_study(direction="maximize")
    with pytest.raises(RuntimeError, match="slot"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


def test_make_objective_refuses_unknown_metric_and_strategy(data: TrainingData) -> None:
    with pytest.raises(ValueError, match="metric"):
        make_objective(data, spec_of(data), SPACE, strategy="random", metric="auc")
    with pytest.raises(ValueError, match="strategy"):
        make_objective(data, spec_of(data), SPACE, strategy="annealing", metric="roc_auc")  # type: ignore[arg-type]


def test_median_pruner_stops_a_constant_model(data: TrainingData) -> None:
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler("random", SPACE, seed=0),
        pruner=make_pruner("median", 3),
    )
    for _ in range(5):  # the pruner's startup trials
        study.enqueue_trial(LR)
    study.enqueue_trial(CONSTANT)
    objective = make_objective(data, spec_of(data), SPACE, strategy="random", metric="roc_auc")
    study.optimize(objective, n_trials=6)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 5 + [optuna.trial.TrialState.PRUNED]
    # warm-up: fold 0 is never judged alone, so the constant model stops after fold 1
    assert study.trials[5].intermediate_values == {0: 0.5, 1: 0.5}


def test_grid_study_visits_distinct_presets(data: TrainingData) -> None:
    space = space_of("logistic_regression", "hist_gradient_boosting")
    objective = make_objective(data, spec_of(data), space, strategy="grid", metric="log_loss")
    study = optuna.create_study(
        direction=direction_of("log_loss"), sampler=make_sampler("grid", space, seed=0)
    )
    study.optimize(objective, n_trials=20)  # the grid sampler stops once every cell ran
    cells = [(t.params["family"], t.params["preset"]) for t in study.trials]
    assert len(cells) == grid_size(space) == 8
    assert sorted(cells) == sorted((f, p) for f in space.families for p in range(4))


def test_samplers_and_pruners() -> None:
    assert isinstance(make_sampler("bayesian", SPACE, 0), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("random", SPACE, 0), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("grid", SPACE, 0), optuna.samplers.GridSampler)
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 5), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner(None, 5), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="pruner"):
        make_pruner("asha", 5)
    with pytest.raises(ValueError, match="strategy"):
        make_sampler("annealing", SPACE, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
def test_warm_start_is_each_familys_medium_preset_inside_the_space(problem: str) -> None:
    space = SearchSpace(problem=problem, families=FAMILIES_OF[problem])  # type: ignore[arg-type]
    warm = warm_start_params(space)
    assert [p["family"] for p in warm] == list(space.families)
    for params in warm:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FixedTrial warns about out-of-range values
            assert suggest_config(optuna.trial.FixedTrial(params), space) == params
        assert config_of(params, space) == params
    assert warm_start_params(SearchSpace("clustering", ("kmeans",))) == []

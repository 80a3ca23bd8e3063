"""Params of the ``train`` job (docs/training.md): what to fit, how to search, how to validate."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from api_client.strict import ColumnName, StrictModel

ModelType = Literal["churn", "lead_scoring"]
Family = Literal["logistic_regression", "random_forest", "extra_trees", "hist_gradient_boosting"]
MetricName = Literal["roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1"]
ModelName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]

BINARY_MODEL_TYPES = ("churn", "lead_scoring")
FAMILIES: tuple[Family, ...] = (
    "logistic_regression",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
)


class Optimization(StrictModel):
    """The hyperparameter search: an Optuna study shared by ``parallelism`` trial runners."""

    strategy: Literal["bayesian", "random", "grid"] = Field(
        "bayesian",
        description=(
            "bayesian: TPE with constant liar (parallel-safe); random; grid: 4 documented "
            "presets per family (n_trials may not exceed the grid's size)"
        ),
    )
    n_trials: int = Field(
        50,
        ge=1,
        le=100_000,
        description="COMPLETE (or pruned) trials the study ends with; capped by CIPML_MAX_TRIALS",
    )
    timeout_s: float | None = Field(
        None, gt=0, description="stop starting trials after this long; the best so far is used"
    )
    parallelism: int = Field(
        1,
        ge=1,
        le=1024,
        description=(
            "trial runners working on the study at once; capped by CIPML_MAX_PARALLELISM, and "
            "to 1 on the embedded SQLite default"
        ),
    )
    pruner: Literal["median", "hyperband"] | None = Field(
        None, description="stop unpromising trials fold by fold"
    )
    metric: MetricName = Field("roc_auc", description="what the search optimises, on CV")
    families: list[Family] = Field(
        default_factory=lambda: list(FAMILIES),
        min_length=1,
        description="estimator families the search may choose from",
    )


class Validation(StrictModel):
    strategy: Literal["stratified_cv"] = Field(
        "stratified_cv", description="how the search scores a configuration"
    )
    folds: int = Field(5, ge=2, le=20)
    holdout: float = Field(
        0.2, gt=0, lt=0.5, description="share of rows kept out of the search, for final metrics"
    )


class Threshold(StrictModel):
    """How the decision threshold is chosen, on the best configuration's CV predictions."""

    objective: Literal["f1", "cost"] = "f1"
    cost_fp: float = Field(1.0, gt=0, description="cost of a false positive (objective cost)")
    cost_fn: float = Field(1.0, gt=0, description="cost of a false negative (objective cost)")


class TrainParams(StrictModel):
    """train: fit a model on a registered feature dataset and register a model version."""

    dataset_id: int = Field(ge=1, description="id of a registered dataset (e.g. build_features)")
    model_name: ModelName
    model_type: ModelType = Field(description="churn and lead_scoring are binary classification")
    target: ColumnName = "label"
    exclude: list[ColumnName] = Field(
        default_factory=list, description="columns that are not model inputs (ids, cutoffs)"
    )
    features: list[ColumnName] | None = Field(
        None, description="model inputs; default: every column but the target and excluded ones"
    )
    positive_class: str | None = Field(
        None,
        description=(
            "the target value that is the positive class; default True / 1, else the rarer one"
        ),
    )
    optimization: Optimization = Field(default_factory=Optimization)
    validation: Validation = Field(default_factory=Validation)
    threshold: Threshold = Field(default_factory=Threshold)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    parent_version_id: int | None = Field(
        None, ge=1, description="the version this one retrains (lineage)"
    )

    @model_validator(mode="after")
    def _target_is_not_an_input(self) -> TrainParams:
        if self.features is not None and self.target in self.features:
            raise ValueError(f"the target {self.target!r} cannot also be a feature")
        return self

"""Params of the ``train`` job (docs/training.md): what to fit, how to search, how to validate.

Five model types solve four problems: churn and lead_scoring are binary classification,
journey_prediction multiclass, clv regression and segmentation clustering. Defaults that
depend on the problem (families, metric, validation strategy) are left None in a request
and resolved here, so a stored job's params always say what ran.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from api_client.feature_params import Duration
from api_client.strict import ColumnName, StrictModel, Timestamp

ModelType = Literal["churn", "lead_scoring", "journey_prediction", "clv", "segmentation"]
Problem = Literal["binary", "multiclass", "regression", "clustering"]
Family = Literal[
    "logistic_regression",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "ridge",
    "tweedie",
    "kmeans",
    "minibatch_kmeans",
    "gaussian_mixture",
]
MetricName = Literal[
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "accuracy",
    "f1",
    "macro_f1",
    "balanced_accuracy",
    "rmse",
    "mae",
    "r2",
    "spearman",
    "silhouette",
]
ValidationStrategy = Literal["stratified_cv", "kfold", "time_series"]
SelectionMethod = Literal["none", "tree_importance", "correlation", "mutual_info"]
Scaling = Literal["standard", "robust", "none"]
Encoding = Literal["onehot", "ordinal"]
EnsembleMethod = Literal["voting", "stacking"]
ModelName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]

PROBLEM_OF: dict[str, Problem] = {
    "churn": "binary",
    "lead_scoring": "binary",
    "journey_prediction": "multiclass",
    "clv": "regression",
    "segmentation": "clustering",
}
BINARY_MODEL_TYPES = tuple(t for t, p in PROBLEM_OF.items() if p == "binary")
CLASSIFIER_FAMILIES: tuple[Family, ...] = (
    "logistic_regression",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
)
FAMILIES_OF: dict[Problem, tuple[Family, ...]] = {
    "binary": CLASSIFIER_FAMILIES,
    "multiclass": CLASSIFIER_FAMILIES,
    "regression": ("ridge", "random_forest", "extra_trees", "hist_gradient_boosting", "tweedie"),
    "clustering": ("kmeans", "minibatch_kmeans", "gaussian_mixture"),
}
DEFAULT_FAMILIES: dict[Problem, tuple[Family, ...]] = {
    "binary": CLASSIFIER_FAMILIES,
    # random forest is the baseline journey model; boosting and a linear model beside it
    "multiclass": ("random_forest", "hist_gradient_boosting", "logistic_regression"),
    # extra trees: the AutoML peer's best on CDNOW spend (benchmarks/RESULTS.md)
    "regression": ("ridge", "random_forest", "extra_trees", "hist_gradient_boosting", "tweedie"),
    "clustering": ("kmeans", "minibatch_kmeans", "gaussian_mixture"),
}
FAMILIES = CLASSIFIER_FAMILIES  # the binary families (kept for existing callers)
METRICS_OF: dict[Problem, tuple[MetricName, ...]] = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1"),
    "multiclass": ("log_loss", "macro_f1", "accuracy", "balanced_accuracy"),
    "regression": ("rmse", "mae", "r2", "spearman"),
    "clustering": ("silhouette",),
}
DEFAULT_METRIC: dict[Problem, MetricName] = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "rmse",
    "clustering": "silhouette",
}
DEFAULT_VALIDATION: dict[Problem, ValidationStrategy] = {
    "binary": "stratified_cv",
    "multiclass": "stratified_cv",
    "regression": "kfold",
    "clustering": "kfold",
}


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
    metric: MetricName | None = Field(
        None,
        description=(
            "what the search optimises, on CV; default roc_auc (binary), log_loss "
            "(multiclass), rmse (regression), silhouette (segmentation)"
        ),
    )
    families: list[Family] | None = Field(
        None,
        min_length=1,
        description="estimator families the search may choose from; default: the model type's",
    )


class Preprocessing(StrictModel):
    """Preprocessing choices the search explores, each a list (one element fixes it). All
    of it is fitted inside the CV folds and saved in the one pipeline artifact."""

    scaling: list[Scaling] = Field(
        default_factory=lambda: list[Scaling](["standard", "robust"]),
        min_length=1,
        description="numeric scaling for linear models and clustering (trees are scale-free)",
    )
    interactions: list[Annotated[int, Field(ge=0, le=20)]] = Field(
        default_factory=lambda: [0, 5],
        min_length=1,
        description=(
            "k: add the pairwise products of the k numeric inputs most related to the target "
            "(0 = none); linear models only"
        ),
    )
    encoding: list[Encoding] = Field(
        default_factory=lambda: list[Encoding](["onehot", "ordinal"]),
        min_length=1,
        description="how text columns become numbers",
    )


class Selection(StrictModel):
    """Feature selection, fitted inside every CV fold (never on the holdout)."""

    method: SelectionMethod = Field(
        "none",
        description=(
            "tree_importance (extra-trees impurity), correlation (univariate F-test: |r| with "
            "the target), mutual_info; none keeps every input"
        ),
    )
    max_features: int | None = Field(
        None,
        ge=1,
        description=(
            "keep at most this many encoded features (required with a method; at most the "
            "number of input columns)"
        ),
    )

    @model_validator(mode="after")
    def _cap_with_method(self) -> Selection:
        if self.method != "none" and self.max_features is None:
            raise ValueError(f"selection method {self.method!r} needs max_features")
        return self


class Ensemble(StrictModel):
    """Ensembles over the study's top distinct configurations, kept only when they beat the
    single best on CV by more than its CV standard error."""

    methods: list[EnsembleMethod] = Field(
        default_factory=lambda: list[EnsembleMethod](["voting"]),
        description=(
            "soft voting (averaged predictions: judged from the members' own CV, no extra "
            "fit) and stacking (opt in: folds x 4 fits per member); [] for none"
        ),
    )
    top_k: int = Field(3, ge=2, le=10, description="distinct configurations in an ensemble")


class Segments(StrictModel):
    """Segmentation: the range the number of segments is searched in, by silhouette."""

    min: int = Field(2, ge=2, le=50)
    max: int = Field(8, ge=2, le=50)

    @model_validator(mode="after")
    def _ordered(self) -> Segments:
        if self.min > self.max:
            raise ValueError(f"segments.min {self.min} is above segments.max {self.max}")
        return self


class Validation(StrictModel):
    strategy: ValidationStrategy | None = Field(
        None,
        description=(
            "stratified_cv, kfold, or time_series (folds ordered by the cutoff column, a gap "
            "of the label horizon); default stratified_cv for classification, else kfold"
        ),
    )
    folds: int = Field(5, ge=2, le=20)
    holdout: float = Field(
        0.2, gt=0, lt=0.5, description="share of rows kept out of the search, for final metrics"
    )
    group_by: ColumnName | None = Field(
        None, description="a customer id column: no customer on both sides of any split"
    )
    cutoff_column: ColumnName = Field("cutoff", description="time_series: the rows' as-of time")
    horizon: Duration | None = Field(
        None,
        description=(
            "time_series: the label horizon (e.g. 39W); default the one build_features "
            "recorded for the dataset"
        ),
    )


class Threshold(StrictModel):
    """How the decision threshold is chosen, on the best configuration's CV predictions."""

    objective: Literal["f1", "cost"] = "f1"
    cost_fp: float = Field(1.0, gt=0, description="cost of a false positive (objective cost)")
    cost_fn: float = Field(1.0, gt=0, description="cost of a false negative (objective cost)")


class LabelledWindow(StrictModel):
    """Train on what a deployed model saw: its logged predictions of the last ``days`` that
    have a recorded outcome (the outcome is the target, the logged features the inputs)."""

    days: float = Field(
        30.0, gt=0, le=3650, description="train on the labelled predictions of the last N days"
    )
    until: Timestamp | None = Field(
        None, description="end of the window (default: when the job starts)"
    )
    evaluation_share: float = Field(
        0.25,
        ge=0,
        le=0.9,
        description=(
            "the newest share of the window, kept out of training for the champion/challenger "
            "comparison"
        ),
    )
    min_rows: int = Field(
        200, ge=10, description="fewer labelled rows than this: the job fails with too_few_rows"
    )
    evaluation_dataset_id: int | None = Field(
        None, ge=1, description="set by the worker: the held-out newest rows"
    )

    @field_validator("until")
    @classmethod
    def _until_in_utc(cls, until: datetime | None) -> datetime | None:
        # Compared with log times (aware UTC): a time without a zone is UTC, as everywhere
        # in the contract.
        if until is None:
            return None
        return until.astimezone(UTC) if until.tzinfo else until.replace(tzinfo=UTC)


class TrainParams(StrictModel):
    """train: fit a model on a registered feature dataset and register a model version."""

    dataset_id: int | None = Field(
        None,
        ge=1,
        description=(
            "id of a registered dataset (e.g. build_features); with labelled_window, the "
            "dataset the window resolved to (set by the worker)"
        ),
    )
    labelled_window: LabelledWindow | None = Field(
        None,
        description=(
            "train on the model's logged predictions with recorded outcomes over the last N "
            "days (instead of dataset_id)"
        ),
    )
    model_name: ModelName
    model_type: ModelType = Field(
        description=(
            "churn, lead_scoring: binary; journey_prediction: multiclass; clv: regression; "
            "segmentation: clustering"
        )
    )
    target: ColumnName | None = Field(
        None, description="the label column; default 'label'; segmentation takes none"
    )
    exclude: list[ColumnName] = Field(
        default_factory=list, description="columns that are not model inputs (ids, cutoffs)"
    )
    features: list[ColumnName] | None = Field(
        None, description="model inputs; default: every column but the target and excluded ones"
    )
    positive_class: str | None = Field(
        None,
        description=(
            "binary: the target value that is the positive class; default True / 1, else the "
            "rarer one"
        ),
    )
    rare_classes: Literal["merge", "refuse"] = Field(
        "merge",
        description=(
            "multiclass: classes too small to appear in every fold and the holdout are merged "
            "into 'other' (or the job is refused)"
        ),
    )
    baseline: list[ColumnName] | None = Field(
        None,
        min_length=1,
        description=(
            "input columns of a plain baseline (e.g. the RFM ones): default "
            "HistGradientBoosting on them is fitted on the same split, and the result "
            "compares it with the model on the holdout, with a paired bootstrap interval"
        ),
    )
    optimization: Optimization = Field(default_factory=Optimization)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    selection: Selection = Field(default_factory=Selection)
    ensemble: Ensemble = Field(default_factory=Ensemble)
    segments: Segments = Field(default_factory=Segments)
    validation: Validation = Field(default_factory=Validation)
    threshold: Threshold = Field(default_factory=Threshold)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    parent_version_id: int | None = Field(
        None, ge=1, description="the version this one retrains (lineage)"
    )

    @property
    def problem(self) -> Problem:
        return PROBLEM_OF[self.model_type]

    @property
    def training_dataset_id(self) -> int:
        """The dataset the job trains on; a labelled window is resolved to one by the
        train coordinator before any other step reads the params."""
        if self.dataset_id is None:
            raise ValueError(
                "the labelled window of this train job is not resolved to a dataset yet "
                "(the coordinator sets dataset_id before the search starts)"
            )
        return self.dataset_id

    @model_validator(mode="before")
    @classmethod
    def _fill_problem_defaults(cls, data: Any) -> Any:
        """Resolve the defaults that depend on the model type (the models are frozen, so
        this happens on the raw input); an unknown model type is left to field validation."""
        if not isinstance(data, dict) or data.get("model_type") not in PROBLEM_OF:
            return data
        problem = PROBLEM_OF[data["model_type"]]
        data = dict(data)
        if problem != "clustering" and data.get("target") is None:
            data["target"] = "label"
        search = _as_dict(data.get("optimization"))
        if search is not None:
            if search.get("families") is None:
                search["families"] = list(DEFAULT_FAMILIES[problem])
            if search.get("metric") is None:
                search["metric"] = DEFAULT_METRIC[problem]
            data["optimization"] = search
        validation = _as_dict(data.get("validation"))
        if validation is not None:
            if validation.get("strategy") is None:
                validation["strategy"] = DEFAULT_VALIDATION[problem]
            data["validation"] = validation
        if problem == "clustering":
            ensemble = _as_dict(data.get("ensemble"))
            if ensemble is not None:
                ensemble["methods"] = []
                data["ensemble"] = ensemble
        return data

    @model_validator(mode="after")
    def _has_training_data(self) -> TrainParams:
        if self.dataset_id is None and self.labelled_window is None:
            raise ValueError(
                "say what to train on: give dataset_id (a registered dataset) or "
                "labelled_window (the model's logged predictions with recorded outcomes)"
            )
        if self.labelled_window is not None and self.problem == "clustering":
            raise ValueError(
                "labelled_window trains on recorded outcomes; segmentation has no target, "
                "give dataset_id"
            )
        return self

    @model_validator(mode="after")
    def _fits_the_problem(self) -> TrainParams:
        """Refuse what the model type's problem cannot do."""
        problem = self.problem
        search, validation = self.optimization, self.validation
        if problem == "clustering":
            if self.target is not None:
                raise ValueError(
                    f"segmentation learns without a target; remove target {self.target!r} (or "
                    "list it in exclude to keep it out of the inputs)"
                )
            if self.selection.method != "none":
                raise ValueError("segmentation has no target to select features against")
            if validation.strategy == "time_series":
                raise ValueError("segmentation has no label horizon; use kfold or the default")
            if self.baseline is not None:
                raise ValueError("segmentation has no target to compare a baseline on")
        if self.positive_class is not None and problem != "binary":
            raise ValueError(f"positive_class applies to binary model types, not {self.model_type}")
        families = search.families or []
        wrong = [f for f in families if f not in FAMILIES_OF[problem]]
        if wrong:
            raise ValueError(
                f"{self.model_type} cannot use famil{'ies' if len(wrong) > 1 else 'y'} "
                f"{', '.join(wrong)}; choose from {', '.join(FAMILIES_OF[problem])}"
            )
        if search.metric not in METRICS_OF[problem]:
            raise ValueError(
                f"metric {search.metric!r} does not apply to {self.model_type}; choose one of "
                f"{', '.join(METRICS_OF[problem])}"
            )
        if validation.strategy == "stratified_cv" and problem in ("regression", "clustering"):
            raise ValueError(
                f"stratified_cv needs classes; {self.model_type} uses kfold or time_series"
            )
        if self.features is not None and self.target in self.features:
            raise ValueError(f"the target {self.target!r} cannot also be a feature")
        return self

    # Resolved by _fill_problem_defaults; these accessors give callers the narrow types.
    @property
    def metric(self) -> MetricName:
        assert self.optimization.metric is not None
        return self.optimization.metric

    @property
    def families(self) -> list[Family]:
        assert self.optimization.families is not None
        return list(dict.fromkeys(self.optimization.families))

    @property
    def strategy(self) -> ValidationStrategy:
        assert self.validation.strategy is not None
        return self.validation.strategy


def _as_dict(value: Any) -> dict[str, Any] | None:
    """A nested section as a mutable dict: {} when absent, None when not a mapping (so
    field validation reports it)."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, dict):
        return dict(value)
    return None

"""The fitted model pipeline as skops bytes, loaded only from an explicit allow-list of types.

skops 0.16 trusts every scikit-learn estimator and many numpy functions by default, so
``get_untrusted_types`` alone would let an ``SVC`` or a ``FunctionTransformer(np.log1p)``
through. We therefore read every type the file names (its schema) ourselves and refuse any
not on ``ALLOWED_TYPES``; the load itself then trusts exactly that list, never the list a
file reports about itself and never ``trusted=True``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

import skops.io as sio
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.pipeline import Pipeline

from workers.skops_types import file_types

# Every type in the artifacts of our models (tests/unit/test_training_artifact.py builds
# each problem's families with every preprocessing, selection and ensemble choice and
# checks this list is exactly what they need), found by dumping them with scikit-learn 1.9
# and skops 0.16. skops 0.16 itself reports only a few of them as untrusted; the rest it
# trusts by default and are listed so that a skops release trusting less still loads them.
# builtins.* are the containers and primitives of the schema (int: class_weight dict keys).
# Functions: only the selection scores (f_classif, mutual_info_*; functools.partial binds
# their seed). FunctionTransformer is FeatureUnion's "passthrough"; it can only call a
# function on this list, and none of them has effects.
ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "builtins.dict",
        "builtins.int",
        "builtins.list",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "functools.partial",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
        "numpy.uint64",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfPoissonLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss._loss.CyHalfTweedieLoss",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfPoissonLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn.cluster._kmeans.KMeans",
        "sklearn.cluster._kmeans.MiniBatchKMeans",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._stacking.StackingClassifier",
        "sklearn.ensemble._stacking.StackingRegressor",
        "sklearn.ensemble._voting.VotingClassifier",
        "sklearn.ensemble._voting.VotingRegressor",
        "sklearn.feature_selection._from_model.SelectFromModel",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        "sklearn.feature_selection._univariate_selection.SelectKBest",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.impute._base.MissingIndicator",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.linear_model._glm.glm.TweedieRegressor",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.linear_model._ridge.RidgeCV",
        "sklearn.mixture._gaussian_mixture.GaussianMixture",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.RobustScaler",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._encoders.OrdinalEncoder",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.preprocessing._polynomial.PolynomialFeatures",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.tree._tree.Tree",
        "sklearn.utils._bunch.Bunch",
    }
)


class UntrustedArtifact(ValueError):
    """The artifact names a type outside the allow-list; nothing in it was built."""

    def __init__(self, types: list[str]) -> None:
        super().__init__(
            f"refusing to load a model pipeline holding type(s) {types} that are not on the "
            "allow-list; only the allow-listed scikit-learn and numpy types are loaded"
        )
        self.types = types


class IncompatibleArtifact(ValueError):
    """The artifact was fitted with library versions this worker cannot faithfully load."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries a pipeline artifact depends on, to record beside it."""
    packages = ("scikit-learn", "numpy", "pandas", "scipy", "skops")
    return {package: version(package) for package in packages}


@contextmanager
def _without_fit_leftovers(pipeline: Any) -> Iterator[None]:
    """Histogram gradient boosting with early stopping on a metric (scoring other than
    "loss") keeps two fit-time helpers: the metric's scorer and an instance copy of its own
    bound ``_raw_predict`` (left by sklearn's patch-and-restore). skops recurses forever
    on the latter and would need the scorer's functions trusted. Prediction needs neither,
    so dump without them (as a fit with scoring="loss" leaves the model) and put them back."""
    held = [
        (step, step._scorer, vars(step).pop("_raw_predict", None))
        for step in _estimators_in(pipeline)
        if isinstance(step, BaseHistGradientBoosting) and hasattr(step, "_scorer")
    ]
    for step, _, _ in held:
        step._scorer = None
    try:
        yield
    finally:
        for step, scorer, raw_predict in held:
            step._scorer = scorer
            if raw_predict is not None:
                step._raw_predict = raw_predict


def _estimators_in(model: Any) -> Iterator[Any]:
    """The model and every estimator inside it: pipeline steps, ensemble members (fitted
    and unfitted lists), column transformer branches."""
    yield model
    if isinstance(model, Pipeline):
        children: list[Any] = [step for _, step in model.steps]
    else:
        children = [est for _, est in getattr(model, "estimators", [])]
        children += list(getattr(model, "estimators_", []))
    for child in children:
        if child is not None and not isinstance(child, str):
            yield from _estimators_in(child)


def dump_pipeline(pipeline: Any) -> bytes:
    with _without_fit_leftovers(pipeline):
        data: bytes = sio.dumps(pipeline)
    return data


def _check_versions(fitted_with: dict[str, str]) -> None:
    """scikit-learn must match to the minor version (fitted attributes change between minor
    releases), numpy to the major version (its 2.0 changed how arrays and scalars pickle)."""
    running = library_versions()
    for package, parts, suffix in (("scikit-learn", 2, ""), ("numpy", 1, ".x")):
        fitted = fitted_with.get(package)
        if fitted is None or fitted.split(".")[:parts] != running[package].split(".")[:parts]:
            needed = (
                f"{package} {'.'.join(fitted.split('.')[:parts])}{suffix}"
                if fitted
                else "the versions it was fitted with"
            )
            raise IncompatibleArtifact(
                f"the pipeline was fitted with {package} {fitted or '(unrecorded version)'} "
                f"but this worker runs {package} {running[package]}; retrain the model with "
                f"the current versions or load it on a worker with {needed}"
            )


MODEL_CLASSES = (Pipeline, VotingClassifier, VotingRegressor, StackingClassifier, StackingRegressor)


def load_pipeline(data: bytes, fitted_with: dict[str, str]) -> Any:
    """The pipeline in ``data``, fitted with the library versions ``fitted_with``.

    Raises IncompatibleArtifact (another scikit-learn minor or numpy major version: the
    fitted state may not mean the same), UntrustedArtifact naming the types off the
    allow-list, or ValueError if the artifact is not a Pipeline (or an ensemble of them).
    """
    _check_versions(fitted_with)
    refused = [name for name in file_types(data) if name not in ALLOWED_TYPES]
    if refused:
        raise UntrustedArtifact(refused)
    # skops 0.16 accepts trusted types absent from the file, so the whole allow-list is passed.
    loaded: Any = sio.loads(data, trusted=sorted(ALLOWED_TYPES))
    if not isinstance(loaded, MODEL_CLASSES):
        raise ValueError(
            f"the artifact holds a {type(loaded).__name__}, not a Pipeline or an ensemble"
        )
    return loaded

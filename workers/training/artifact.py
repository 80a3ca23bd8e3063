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
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from workers.skops_types import file_types

# Every type in the artifacts of our pipelines (ColumnTransformer over numeric and string
# columns; SimpleImputer with indicators, StandardScaler, OneHotEncoder; logistic
# regression, forests, extra trees, histogram gradient boosting, single trees), found by
# dumping such pipelines with scikit-learn 1.9 and skops 0.16. skops 0.16 itself reports only
# numpy.dtype, Tree and TreePredictor; the rest it trusts by default and are listed so that
# a skops release trusting less still loads them. builtins.* are the containers and
# primitives of the schema (int: class_weight dict keys).
ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "builtins.dict",
        "builtins.int",
        "builtins.list",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
        "numpy.uint64",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.impute._base.MissingIndicator",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._tree.Tree",
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
def _without_fit_leftovers(pipeline: Pipeline) -> Iterator[None]:
    """Histogram gradient boosting with early stopping on a metric (scoring other than
    "loss") keeps two fit-time helpers: the metric's scorer and an instance copy of its own
    bound ``_raw_predict`` (left by sklearn's patch-and-restore). skops recurses forever
    on the latter and would need the scorer's functions trusted. Prediction needs neither,
    so dump without them (as a fit with scoring="loss" leaves the model) and put them back."""
    held = [
        (step, step._scorer, vars(step).pop("_raw_predict", None))
        for _, step in pipeline.steps
        if isinstance(step, HistGradientBoostingClassifier) and hasattr(step, "_scorer")
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


def dump_pipeline(pipeline: Pipeline) -> bytes:
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


def load_pipeline(data: bytes, fitted_with: dict[str, str]) -> Pipeline:
    """The pipeline in ``data``, fitted with the library versions ``fitted_with``.

    Raises IncompatibleArtifact (another scikit-learn minor or numpy major version: the
    fitted state may not mean the same), UntrustedArtifact naming the types off the
    allow-list, or ValueError if the artifact is not a Pipeline.
    """
    _check_versions(fitted_with)
    refused = [name for name in file_types(data) if name not in ALLOWED_TYPES]
    if refused:
        raise UntrustedArtifact(refused)
    # skops 0.16 accepts trusted types absent from the file, so the whole allow-list is passed.
    loaded: Any = sio.loads(data, trusted=sorted(ALLOWED_TYPES))
    if not isinstance(loaded, Pipeline):
        raise ValueError(f"the artifact holds a {type(loaded).__name__}, not a Pipeline")
    return loaded

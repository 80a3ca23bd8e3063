"""Fitted cleaning pipelines as skops bytes, loaded without trusting arbitrary types.

Every type an artifact's schema names must be ours (this package) or on the allow-list
below: the scikit-learn, numpy and builtin types our pipelines contain. Anything else (a
function such as ``os.system``, a foreign class, an estimator skops 0.16 trusts by default
such as ``SVC``) is refused by name: never ``trusted=True``.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline

from workers.skops_types import file_types

OWN_PREFIX = "workers.preprocessing.cleaning."

# Every non-builtin type in our pipelines' artifacts (skops 0.16 reports only numpy.dtype,
# IterativeImputer, _ImputerTriplet and Tree; the others it trusts by default, listed so
# that a skops release trusting less still loads them). No scipy type is used.
ALLOWED_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "numpy.random.mtrand.RandomState",
        "sklearn.ensemble._iforest.IsolationForest",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.impute._iterative.IterativeImputer",
        "sklearn.impute._iterative._ImputerTriplet",
        "sklearn.impute._knn.KNNImputer",
        "sklearn.linear_model._bayes.BayesianRidge",
        "sklearn.pipeline.Pipeline",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.tree._tree.Tree",
    }
)


class UnsafeArtifactError(ValueError):
    """The artifact holds a type we do not trust; it was not loaded."""

    def __init__(self, types: list[str]) -> None:
        super().__init__(
            f"refusing to load a cleaning pipeline holding untrusted type(s) {types}; "
            "only scikit-learn, numpy and scipy types on the allow-list and this "
            f"package's ({OWN_PREFIX}*) are loaded"
        )
        self.types = types


def dump_pipeline(pipeline: Pipeline) -> bytes:
    data: bytes = sio.dumps(pipeline)
    return data


def load_pipeline(data: bytes) -> Pipeline:
    """The pipeline in ``data``, or UnsafeArtifactError naming the types we do not trust."""
    named = file_types(data)
    refused = [t for t in named if not (t.startswith(OWN_PREFIX) or t in ALLOWED_TYPES)]
    if refused:
        raise UnsafeArtifactError(refused)
    # Every type the file names is ours or allow-listed (checked above), so trusting them
    # trusts nothing beyond the allow-list.
    loaded: Any = sio.loads(data, trusted=named)
    if not isinstance(loaded, Pipeline):
        raise ValueError(f"the artifact holds a {type(loaded).__name__}, not a Pipeline")
    return loaded


def library_versions() -> dict[str, str]:
    """Versions of the libraries a pipeline artifact depends on, to record beside it."""
    packages = ("scikit-learn", "numpy", "pandas", "scipy", "skops")
    return {package: version(package) for package in packages}
